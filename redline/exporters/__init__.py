"""What metrics exist and how they are computed: the RED schema, route templating, exposition."""
