"""The ambassador: an HTTP/1.1 proxy beside the app that records RED for every request."""
