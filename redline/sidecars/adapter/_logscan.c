/* The adapter's reader of nginx's and Apache's `combined` access log lines, out of the regex
 * engine: fields found by memchr and a byte scan, one pass over a block (formats.py is the
 * Python side, and its reference regex stays the fallback and the specification).
 *
 * Why: the block regex cost ~7,500 instructions per line (callgrind) where this scan and its
 * strings cost ~1,300; the rows it makes are the ones `re.findall` makes, so the pipeline after
 * it is unchanged.
 *
 * What it accepts is a strict subset of what the reference regex matches, chosen so that on
 * every accepted line the regex has one way to match (each field ends at the first occurrence of
 * the one character that may follow it), and that way is the one this scan follows. A block is
 * all or nothing: for a block that is not ASCII (str offsets are then not byte offsets), does
 * not end in a newline, or has any line this scan is not sure of (an empty line, a field missing,
 * a quote left open, a duration followed by junk...), `scan` returns None and formats.py reads
 * the whole block with the regex, which then decides what is a bad line. A regex match may run
 * on into the next line (an unclosed request quote); a line-by-line answer for only the bad line
 * could differ from the reference's, hence the whole block.
 *
 * A row is (method, path, bad, status, agent, duration), formats.py's group order for the
 * built-in formats; a field the line lacks is "" (as findall gives an unmatched group).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

enum { NGINX = 0, APACHE = 1 }; /* how the duration after the agent is spelled */

typedef struct {
    const char *start;
    Py_ssize_t size;
} Span;

typedef struct {
    Span method, path, bad, status, agent, duration;
} Fields;

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int is_method_char(char c) { /* the regex's [A-Za-z_-] */
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '-';
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; } /* [ \t\r] */

static int all_blank(const char *p, const char *end) {
    for (; p < end; p++)
        if (!is_blank(*p))
            return 0;
    return 1;
}

static const char *skip_digits(const char *p, const char *end) {
    while (p < end && is_digit(*p))
        p++;
    return p;
}

static Span span(const char *start, const char *end) { return (Span){start, end - start}; }

/* `"(?:(?P<method>[A-Za-z_-]+) (?P<path>[^ "?]*)(?:\?[^ "]*)?(?: HTTP/[0-9.]+)?|(?P<bad>[^"]*))"`
 * between the quotes at `start` and `end` (the first quote after the opening one: no piece of
 * either branch can hold a quote). The first branch when it spans the whole request, else the
 * second: the regex tries them in that order, and both must end at `end`. */
static void request(const char *start, const char *end, Fields *out) {
    const char *p = start;
    while (p < end && is_method_char(*p))
        p++;
    if (p > start && p < end && *p == ' ') {
        const char *path = p + 1, *q = path;
        while (q < end && *q != ' ' && *q != '?')
            q++;
        const char *rest = q;
        if (rest < end && *rest == '?') { /* the query: up to a space (it may hold a '?') */
            const char *space = memchr(rest, ' ', end - rest);
            rest = space != NULL ? space : end;
        }
        int whole = rest == end;
        if (!whole && end - rest > 6 && memcmp(rest, " HTTP/", 6) == 0) {
            const char *v = rest + 6;
            while (v < end && (is_digit(*v) || *v == '.'))
                v++;
            whole = v == end;
        }
        if (whole) {
            out->method = span(start, p);
            out->path = span(path, q);
            return;
        }
    }
    out->bad = span(start, end);
}

/* What follows the agent's closing quote, up to the line's end. nginx:
 * `(?: (?P<duration>[0-9]+(?:\.[0-9]+)?|-)(?: [^\n]*)?)?[ \t\r]*$`; Apache: the same with
 * `[0-9]+` alone. Accepted: only blanks (no duration), or a space, the longest duration the
 * pattern reads there, then nothing, a space and anything, or blanks: the regex's first try.
 * Anything else (where it would backtrack, and mostly fail) is declined. */
static int tail(const char *p, const char *eol, int kind, Fields *out) {
    if (all_blank(p, eol))
        return 1;
    if (*p != ' ')
        return 0;
    const char *d = p + 1, *e;
    if (kind == NGINX && d < eol && *d == '-') {
        e = d + 1;
    } else {
        e = skip_digits(d, eol);
        if (e == d)
            return 0;
        if (kind == NGINX && e + 1 < eol && *e == '.' && is_digit(e[1]))
            e = skip_digits(e + 1, eol);
    }
    if (e < eol && *e != ' ' && !all_blank(e, eol))
        return 0;
    out->duration = span(d, e);
    return 1;
}

/* `^[^ ]+ [^ ]+ [^ ]+ \[[^\]]*\] "REQUEST" [0-9]{3} (?:[0-9]+|-) "[^"]*" "(?P<agent>[^"]*)"TAIL`
 * on the line [p, eol): 1 with its fields, or 0 to decline. */
static int line(const char *p, const char *eol, int kind, Fields *out) {
    for (int field = 0; field < 3; field++) { /* address, ident, user: each up to a space */
        const char *space = memchr(p, ' ', eol - p);
        if (space == NULL || space == p)
            return 0;
        p = space + 1;
    }
    if (p == eol || *p != '[')
        return 0;
    const char *closing = memchr(p, ']', eol - p);
    if (closing == NULL || eol - closing < 3 || memcmp(closing, "] \"", 3) != 0)
        return 0;
    p = closing + 3;
    const char *quote = memchr(p, '"', eol - p);
    if (quote == NULL)
        return 0; /* the regex's `bad` would run on into the next line: the reference decides */
    request(p, quote, out);
    p = quote + 1;
    /* `" 200 1234 "`: the status, then the bytes sent (digits or "-") */
    if (eol - p < 6 || p[0] != ' ' || !is_digit(p[1]) || !is_digit(p[2]) || !is_digit(p[3]) ||
        p[4] != ' ')
        return 0;
    out->status = span(p + 1, p + 4);
    p += 5;
    const char *bytes_end = *p == '-' ? p + 1 : skip_digits(p, eol);
    if (bytes_end == p || eol - bytes_end < 2 || memcmp(bytes_end, " \"", 2) != 0)
        return 0;
    p = bytes_end + 2;
    quote = memchr(p, '"', eol - p); /* the referer's end */
    if (quote == NULL || eol - quote < 3 || memcmp(quote, "\" \"", 3) != 0)
        return 0;
    p = quote + 3;
    quote = memchr(p, '"', eol - p); /* the agent's end */
    if (quote == NULL)
        return 0;
    out->agent = span(p, quote);
    return tail(quote + 1, eol, kind, out);
}

/* Strings the rows share: a status or a method repeats on most lines. */
static PyObject *statuses[1000];
static const char *const METHODS[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
#define N_METHODS (sizeof METHODS / sizeof METHODS[0])
static PyObject *methods[N_METHODS];

static PyObject *ascii(Span s) {
    PyObject *text = PyUnicode_New(s.size, 127);
    if (text != NULL && s.size > 0)
        memcpy(PyUnicode_1BYTE_DATA(text), s.start, s.size);
    return text;
}

static PyObject *status_string(Span s) {
    int code = (s.start[0] - '0') * 100 + (s.start[1] - '0') * 10 + (s.start[2] - '0');
    if (statuses[code] == NULL && (statuses[code] = ascii(s)) == NULL)
        return NULL;
    Py_INCREF(statuses[code]);
    return statuses[code];
}

static PyObject *method_string(Span s) {
    for (size_t i = 0; i < N_METHODS; i++) {
        if ((Py_ssize_t)strlen(METHODS[i]) == s.size && memcmp(METHODS[i], s.start, s.size) == 0) {
            Py_INCREF(methods[i]);
            return methods[i];
        }
    }
    return ascii(s);
}

static PyObject *row(const Fields *f, int agents) {
    PyObject *row = PyTuple_New(6);
    if (row == NULL)
        return NULL;
    PyObject *items[6] = {method_string(f->method), ascii(f->path), ascii(f->bad),
                          status_string(f->status), ascii(agents ? f->agent : (Span){NULL, 0}),
                          ascii(f->duration)};
    for (int i = 0; i < 6; i++) {
        if (items[i] == NULL) {
            for (int j = 0; j < 6; j++)
                Py_XDECREF(items[j]);
            Py_DECREF(row);
            return NULL;
        }
    }
    for (int i = 0; i < 6; i++)
        PyTuple_SET_ITEM(row, i, items[i]);
    /* Strings only, so no cycle can pass through it: the garbage collector would untrack it
     * at its first pass anyway, after traversing it (a block's rows are thousands of tuples). */
    PyObject_GC_UnTrack(row);
    return row;
}

PyDoc_STRVAR(scan_doc,
             "scan(text, kind, agents) -> list of rows, or None\n\n"
             "The rows of a block of complete `combined` lines (kind 0: nginx, 1: Apache), each\n"
             "(method, path, bad, status, agent, duration) as the reference regex's findall\n"
             "gives them (the agent \"\" unless `agents`); None when the regex must read the block.");

static PyObject *scan(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text;
    int kind, agents;
    if (!PyArg_ParseTuple(args, "Uip:scan", &text, &kind, &agents))
        return NULL;
    if (kind != NGINX && kind != APACHE) {
        PyErr_SetString(PyExc_ValueError, "kind: expected 0 (nginx) or 1 (Apache)");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE;
    const char *p = (const char *)PyUnicode_1BYTE_DATA(text);
    const char *end = p + PyUnicode_GET_LENGTH(text);
    if (p == end || end[-1] != '\n')
        Py_RETURN_NONE;
    PyObject *rows = PyList_New(0);
    if (rows == NULL)
        return NULL;
    while (p < end) {
        const char *eol = memchr(p, '\n', end - p);
        Fields fields = {{NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}};
        if (!line(p, eol, kind, &fields)) {
            Py_DECREF(rows);
            Py_RETURN_NONE;
        }
        PyObject *item = row(&fields, agents);
        if (item == NULL || PyList_Append(rows, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(rows);
            return NULL;
        }
        Py_DECREF(item);
        p = eol + 1;
    }
    return rows;
}

/* Powers of ten that a double holds exactly (10^22 is the last). */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* `[0-9]+(\.[0-9]+)?` of at most 15 digits as a double, or 0 when it is not that. Then the
 * digits without the point are an integer below 10^15 < 2^53 and the divisor a power of ten
 * below 10^22, both exact doubles, and IEEE division rounds their exact quotient, the
 * decimal's value, correctly: what float() gives, which rounds correctly too. */
static int short_decimal(const char *p, Py_ssize_t size, double *value) {
    if (size == 0 || size > 16)
        return 0;
    const char *end = p + size, *point = NULL;
    long long digits = 0;
    for (; p < end; p++) {
        if (is_digit(*p))
            digits = digits * 10 + (*p - '0');
        else if (*p == '.' && point == NULL)
            point = p;
        else
            return 0;
    }
    if (point != NULL && (point == end - size || point == end - 1))
        return 0; /* a point needs digits on both sides */
    if (size - (point != NULL) > 15)
        return 0;
    *value = (double)digits / POW10[point == NULL ? 0 : end - point - 1];
    return 1;
}

PyDoc_STRVAR(floats_doc,
             "floats(strings) -> list of float\n\n"
             "list(map(float, strings)) for a list, with the same values and errors; short\n"
             "decimals (the durations of access logs) without float()'s general parser.");

static PyObject *floats(PyObject *self, PyObject *strings) {
    (void)self;
    if (!PyList_Check(strings)) {
        PyErr_SetString(PyExc_TypeError, "floats: expected a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(strings);
    PyObject *values = PyList_New(n);
    if (values == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(strings, i), *value;
        double parsed;
        if (PyUnicode_CheckExact(item) && PyUnicode_IS_ASCII(item) &&
            short_decimal((const char *)PyUnicode_1BYTE_DATA(item), PyUnicode_GET_LENGTH(item),
                          &parsed))
            value = PyFloat_FromDouble(parsed);
        else
            value = PyNumber_Float(item); /* float(item): anything else, errors included */
        if (value == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyList_SET_ITEM(values, i, value);
    }
    return values;
}

static PyMethodDef functions[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {"floats", floats, METH_O, floats_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_logscan",
    "The adapter's C reader of `combined` access log lines (formats.py is the reference).", -1,
    functions, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__logscan(void) {
    for (size_t i = 0; i < N_METHODS; i++)
        if (methods[i] == NULL && (methods[i] = PyUnicode_InternFromString(METHODS[i])) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
