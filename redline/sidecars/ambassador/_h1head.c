/* The ambassador's HTTP/1.1 head reader, out of the regex engine: one byte scan of a request
 * or response head (http1.py is the Python side, and its regexes stay the fallback and the
 * specification); and head_end, the search for a head's end in a chunk (bytes.find's answer).
 *
 * Why: with every head distinct (no per-connection memo), the two regex parses cost 34.7k of
 * the 49k instructions of a proxied exchange; with this reader 3.8k of 17.5k (callgrind,
 * mypyc build, bench_proxy_python.py --distinct-heads; the calls and objects included).
 *
 * The contract is _logscan's: for a head it either returns what http1.py's reference parse
 * returns (the fields of RequestHead / ResponseHead, in their constructor's order) or declines
 * (None), and the reference then parses it, giving the same answer or the same ProtocolError.
 * It accepts a strict subset of the heads the reference accepts:
 * - requests: what `_REQUEST_HEAD` matches (token method, target of [^\x00-\x20\x7f], HTTP/1.0
 *   or 1.1, header lines `token:value` with no control character but tab in the value, at most
 *   one Host, and one in HTTP/1.1), and of those only the ones whose framing is plain: at most
 *   one Content-Length, of 1-18 digits; at most one Transfer-Encoding, exactly `chunked`; not
 *   both. Anything else (errors, repeated or listed framing headers) is declined;
 * - responses: a status line `_STATUS_LINE` matches, and at most one Content-Length (of 1-18
 *   digits) unless a non-empty Transfer-Encoding makes it moot. The other lines are read as the
 *   reference reads them, not validated (below).
 * Validated, a request's lines each end at their CRLF and a name is exactly the token before
 * its colon, so the reference's `findall` of `\r\n(name)[ \t]*:[ \t]*([^\r\n]*)` finds exactly
 * the lines whose name is one of those (ASCII case-insensitive), with the whole rest of the
 * line as the value, which is what this scan reads. In a response, that findall is followed
 * as it is: a match holds no CR or LF but its first CRLF, so matches never overlap, and every
 * CRLF of the head is tried.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

enum { TOKEN = 1, VALUE = 2, TARGET = 4 };
static unsigned char classes[256]; /* filled by init_classes() */
static unsigned char lowered[256]; /* ASCII lower case, as bytes.lower() */

static void init_classes(void) {
    static const char token_marks[] = "!#$%&'*+-.^_`|~";
    for (int c = 0; c < 256; c++) {
        unsigned char class = 0;
        if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c != 0 && strchr(token_marks, c) != NULL))
            class |= TOKEN;
        if (c == '\t' || (c >= 0x20 && c != 0x7f)) /* [^\x00-\x08\x0a-\x1f\x7f] */
            class |= VALUE;
        if (c > 0x20 && c != 0x7f) /* [^\x00-\x20\x7f] */
            class |= TARGET;
        classes[c] = class;
        lowered[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
}

/* A position in a head. A bytes object's data ends with a NUL past its size, which no class
 * holds: the scans below stop there without testing for the end at each byte. */
typedef const unsigned char *Ptr;

typedef struct {
    Ptr start;
    Py_ssize_t size;
} Span;

/* Whether [p, p + size) is `word` (lower case) in any ASCII case. The word's NUL is tested as
 * such, not as a byte to match: a longer span with a NUL there must differ without the loop
 * reading past the word (no caller passes one today: request values are validated, and the
 * response's calls pass the word's length). */
static int same_word(Ptr p, Py_ssize_t size, const char *word) {
    for (Py_ssize_t i = 0; i < size; i++)
        if (word[i] == '\0' || lowered[p[i]] != (unsigned char)word[i])
            return 0;
    return word[size] == '\0';
}

/* The end of a field value's characters from p: the first byte that is no VALUE (CR, at the
 * line's end). Eight bytes at a time while none is below 0x20 or 0x7f (tab is below 0x20: its
 * word goes byte by byte); the tests are exact for "any byte", which is all they decide. */
static Ptr value_end(Ptr p, Ptr end) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    while (end - p >= 8) {
        uint64_t word, del;
        memcpy(&word, p, 8);
        del = word ^ (ones * 0x7f);
        if (((word - ones * 0x20) & ~word & highs) | ((del - ones) & ~del & highs))
            break;
        p += 8;
    }
    while (classes[*p] & VALUE)
        p++;
    return p;
}

/* Whether `word` (lower case) occurs in `s`, in any ASCII case (bytes.lower().find() >= 0). */
static int contains_word(Span s, const char *word) {
    Py_ssize_t n = (Py_ssize_t)strlen(word);
    for (Py_ssize_t i = 0; i + n <= s.size; i++)
        if (same_word(s.start + i, n, word))
            return 1;
    return 0;
}

/* The value without the blanks around it: the reference's `[ \t]*` then rstrip(b" \t"). */
static Span trimmed(Ptr start, Ptr end) {
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return (Span){start, end - start};
}

/* One header line at p: its name and its trimmed value, and the position after its CRLF; NULL
 * when the line is no `token:value CRLF` (the empty line ending the head included). */
static Ptr field_line(Ptr p, Ptr end, Span *name, Span *value) {
    Ptr start = p;
    while (classes[*p] & TOKEN)
        p++;
    if (p == start || p == end || *p != ':')
        return NULL;
    *name = (Span){start, p - start};
    Ptr value_start = ++p;
    p = value_end(p, end);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return NULL;
    *value = trimmed(value_start, p);
    return p + 2;
}

/* 1-18 digits (the reference's isdigit() and len() <= 18) into *out; 0 for anything else. */
static int small_number(Span s, long long *out) {
    if (s.size < 1 || s.size > 18)
        return 0;
    long long n = 0;
    for (Py_ssize_t i = 0; i < s.size; i++) {
        if (s.start[i] < '0' || s.start[i] > '9')
            return 0;
        n = n * 10 + (s.start[i] - '0');
    }
    *out = n;
    return 1;
}

/* Connection options, as the reference's _tokens(): comma-separated, trimmed, in any case. */
enum { OPT_CLOSE = 1, OPT_KEEP_ALIVE = 2, OPT_UPGRADE = 4 };

static int options(Span s) {
    int found = 0;
    Ptr p = s.start, end = s.start + s.size;
    while (p <= end) {
        Ptr comma = memchr(p, ',', end - p);
        Span item = trimmed(p, comma != NULL ? comma : end);
        if (same_word(item.start, item.size, "close"))
            found |= OPT_CLOSE;
        else if (same_word(item.start, item.size, "keep-alive"))
            found |= OPT_KEEP_ALIVE;
        else if (same_word(item.start, item.size, "upgrade"))
            found |= OPT_UPGRADE;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return found;
}

/* --- values for the tuple ------------------------------------------------------------------ */

static const char *const METHODS[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
#define N_METHODS (sizeof METHODS / sizeof METHODS[0])
static PyObject *methods[N_METHODS]; /* shared: a method repeats on most requests */

static PyObject *bytes_of(Span s) {
    return PyBytes_FromStringAndSize((const char *)s.start, s.size);
}

static PyObject *method_bytes(Span s) {
    for (size_t i = 0; i < N_METHODS; i++) {
        if ((Py_ssize_t)strlen(METHODS[i]) == s.size && memcmp(METHODS[i], s.start, s.size) == 0) {
            Py_INCREF(methods[i]);
            return methods[i];
        }
    }
    return bytes_of(s);
}

static PyObject *none(void) { Py_RETURN_NONE; }

static PyObject *bytes_or_none(int present, Span s) { return present ? bytes_of(s) : none(); }

static PyObject *flag(int value) { return PyBool_FromLong(value); }

/* A tuple of `n` new references; NULL (with the error set) if any is NULL. */
static PyObject *tuple_of(PyObject **items, Py_ssize_t n) {
    PyObject *tuple = NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        if (items[i] == NULL)
            goto fail;
    if ((tuple = PyTuple_New(n)) == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(tuple, i, items[i]);
    return tuple;
fail:
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(items[i]);
    return NULL;
}

/* --- requests ------------------------------------------------------------------------------ */

#define MAX_TRACESTATES 8 /* more tracestate lines than this: declined */

typedef struct {
    int hosts, lengths, transfers, parents, states, options, has_agent, has_upgrade;
    Span length, transfer, agent, upgrade, parent, state[MAX_TRACESTATES];
} RequestFields;

/* Note one request header line; 0 to decline the head. */
static int request_field(Span name, Span value, RequestFields *f) {
    switch (name.size) {
    case 4:
        if (same_word(name.start, 4, "host") && ++f->hosts > 1)
            return 0;
        break;
    case 7:
        if (same_word(name.start, 7, "upgrade")) {
            f->has_upgrade = 1;
            f->upgrade = value; /* the last one */
        }
        break;
    case 10:
        if (same_word(name.start, 10, "connection")) {
            f->options |= options(value);
        } else if (same_word(name.start, 10, "user-agent")) {
            if (!f->has_agent || f->agent.size == 0) /* `user_agent or value` */
                f->agent = value;
            f->has_agent = 1;
        } else if (same_word(name.start, 10, "tracestate")) {
            if (f->states == MAX_TRACESTATES)
                return 0;
            f->state[f->states++] = value;
        }
        break;
    case 11:
        if (same_word(name.start, 11, "traceparent")) {
            f->parents++;
            f->parent = value;
        }
        break;
    case 14:
        if (same_word(name.start, 14, "content-length")) {
            if (++f->lengths > 1)
                return 0;
            f->length = value;
        }
        break;
    case 17:
        if (same_word(name.start, 17, "transfer-encoding")) {
            if (++f->transfers > 1 || !same_word(value.start, value.size, "chunked"))
                return 0;
            f->transfer = value;
        }
        break;
    }
    return 1;
}

/* The tracestate values joined by commas, as the reference joins them; None without any. */
static PyObject *tracestate(const RequestFields *f) {
    if (f->states <= 1)
        return bytes_or_none(f->states, f->state[0]);
    Py_ssize_t size = f->states - 1;
    for (int i = 0; i < f->states; i++)
        size += f->state[i].size;
    PyObject *joined = PyBytes_FromStringAndSize(NULL, size);
    if (joined == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(joined);
    for (int i = 0; i < f->states; i++) {
        if (i > 0)
            *out++ = ',';
        memcpy(out, f->state[i].start, f->state[i].size);
        out += f->state[i].size;
    }
    return joined;
}

static PyObject *request_head(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyBytes_CheckExact(arg))
        Py_RETURN_NONE;
    Ptr p = (Ptr)PyBytes_AS_STRING(arg), end = p + PyBytes_GET_SIZE(arg);
    /* the request line: `token target HTTP/1.[01] CRLF` */
    Ptr method_start = p;
    while (classes[*p] & TOKEN)
        p++;
    if (p == method_start || p == end || *p != ' ')
        Py_RETURN_NONE;
    Span method = {method_start, p - method_start};
    Ptr target_start = ++p;
    while (classes[*p] & TARGET)
        p++;
    if (p == target_start || end - p < 11 || memcmp(p, " HTTP/1.", 8) != 0 ||
        (p[8] != '0' && p[8] != '1') || p[9] != '\r' || p[10] != '\n')
        Py_RETURN_NONE;
    Span target = {target_start, p - target_start};
    int minor = p[8] - '0';
    p += 11;
    RequestFields f;
    memset(&f, 0, sizeof f);
    Span name, value;
    Ptr next;
    while ((next = field_line(p, end, &name, &value)) != NULL) {
        if (!request_field(name, value, &f))
            Py_RETURN_NONE;
        p = next;
    }
    /* the empty line, and nothing after it; exactly one Host in HTTP/1.1 */
    if (end - p != 2 || p[0] != '\r' || p[1] != '\n' || (minor == 1 && f.hosts != 1))
        Py_RETURN_NONE;
    long long length = 0;
    if ((f.lengths && (f.transfers || !small_number(f.length, &length))))
        Py_RETURN_NONE;
    int close = (f.options & OPT_CLOSE) || (minor == 0 && !(f.options & OPT_KEEP_ALIVE));
    int upgrade = (method.size == 7 && memcmp(method.start, "CONNECT", 7) == 0) ||
                  ((f.options & OPT_UPGRADE) && f.has_upgrade);
    PyObject *items[11] = {
        method_bytes(method),
        bytes_of(target),
        PyLong_FromLong(minor),
        f.lengths ? PyLong_FromLongLong(length) : none(),
        flag(f.transfers),
        flag(upgrade),
        bytes_or_none(f.has_upgrade, f.upgrade),
        flag(close),
        bytes_or_none(f.has_agent, f.agent),
        bytes_or_none(f.parents == 1, f.parent),
        tracestate(&f),
    };
    return tuple_of(items, 11);
}

/* --- responses ----------------------------------------------------------------------------- */

enum { OTHER, CONNECTION, CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING };

/* `word` at p, then `[ \t]*:[ \t]*`: where the value starts, or NULL. */
static Ptr named(Ptr p, Ptr end, const char *word, Py_ssize_t size) {
    if (end - p < size || !same_word(p, size, word))
        return NULL;
    for (p += size; p < end && (*p == ' ' || *p == '\t'); p++)
        ;
    if (p == end || *p != ':')
        return NULL;
    for (p++; p < end && (*p == ' ' || *p == '\t'); p++)
        ;
    return p;
}

/* The reference's `\r\n(connection|content-type|content-length|transfer-encoding)[ \t]*:[ \t]*
 * ([^\r\n]*)` at p, just after a CRLF, on the line up to `line_end` (its LF, or the head's
 * end): which name (OTHER: none) and its value, rstripped. */
static int response_field(Ptr p, Ptr line_end, Span *value) {
    int which = OTHER;
    Ptr start = NULL;
    Py_ssize_t size = line_end - p;
    if (size > 0 && lowered[p[0]] == 'c' && size > 8) { /* the letter telling them apart */
        if (lowered[p[3]] == 'n')
            which = (start = named(p, line_end, "connection", 10)) ? CONNECTION : OTHER;
        else if (lowered[p[8]] == 't')
            which = (start = named(p, line_end, "content-type", 12)) ? CONTENT_TYPE : OTHER;
        else if (lowered[p[8]] == 'l')
            which = (start = named(p, line_end, "content-length", 14)) ? CONTENT_LENGTH : OTHER;
    } else if (size > 0 && lowered[p[0]] == 't') {
        which = (start = named(p, line_end, "transfer-encoding", 17)) ? TRANSFER_ENCODING : OTHER;
    }
    if (which != OTHER) {
        Ptr cr = memchr(start, '\r', line_end - start);
        *value = trimmed(start, cr != NULL ? cr : line_end);
    }
    return which;
}

/* Just after the first CRLF whose LF is at or after `newline`, or NULL when there is none.
 * `newline` is past the status line's CRLF, so newline[-1] is in the head. */
static Ptr after_crlf(Ptr newline, Ptr end) {
    while (newline[-1] != '\r') {
        newline = memchr(newline + 1, '\n', end - newline - 1);
        if (newline == NULL)
            return NULL;
    }
    return newline + 1;
}

/* Unlike a request, a response head is not validated line by line (the app is trusted with
 * its own framing): the reference reads the status line, then the four headers above wherever
 * a CRLF precedes them in the head, whatever the other lines hold. This scan does the same, so
 * it answers for any head whose status line is valid and whose framing is plain. */
static PyObject *response_head(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyBytes_CheckExact(arg))
        Py_RETURN_NONE;
    Ptr p = (Ptr)PyBytes_AS_STRING(arg), end = p + PyBytes_GET_SIZE(arg);
    /* `HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\x00-\x08\x0a-\x1f\x7f]*)?\r\n` */
    if (end - p < 14 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ' || p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' ||
        p[11] < '0' || p[11] > '9')
        Py_RETURN_NONE;
    int close = p[7] == '0';
    long status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    p += 12;
    if (*p == ' ')
        p = value_end(p + 1, end);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        Py_RETURN_NONE;
    /* The status line holds no CR or LF: its CRLF is the head's first. Each CRLF from there. */
    int lengths = 0, event_stream = 0;
    Span length = {NULL, 0}, transfer = {NULL, 0}, value;
    for (p += 2; p != NULL;) {
        Ptr newline = memchr(p, '\n', end - p);
        switch (response_field(p, newline != NULL ? newline : end, &value)) {
        case CONNECTION: /* substrings, as the reference */
            close = contains_word(value, "close") || (close && !contains_word(value, "keep-alive"));
            break;
        case CONTENT_TYPE: /* the last one */
            event_stream = value.size >= 17 && same_word(value.start, 17, "text/event-stream");
            break;
        case CONTENT_LENGTH:
            lengths++;
            length = value;
            break;
        case TRANSFER_ENCODING:
            transfer = value; /* the last one holds the final coding */
            break;
        }
        p = newline != NULL ? after_crlf(newline, end) : NULL;
    }
    int chunked = 0;
    long long size = 0;
    if (transfer.size > 0) { /* RFC 9112 6.3: chunked, or delimited by the close */
        chunked = transfer.size >= 7 &&
                  same_word(transfer.start + transfer.size - 7, 7, "chunked");
        lengths = 0;
    } else if (lengths > 1 || (lengths == 1 && !small_number(length, &size))) {
        Py_RETURN_NONE;
    }
    PyObject *items[5] = {
        PyLong_FromLong(status), flag(close), lengths ? PyLong_FromLongLong(size) : none(),
        flag(chunked), flag(event_stream),
    };
    return tuple_of(items, 5);
}

/* --- the end of a head ---------------------------------------------------------------------- */

/* head_end(data, pos): data.find(b"\r\n\r\n", pos) for the positions the ambassador passes.
 * Why: bytes.find is a generic method call from compiled code (the bound method, the argument
 * tuple, the slice arithmetic): ~1.1k instructions per head, one request and one response head
 * per exchange; this is a vector call and memchr (the same bench with distinct heads: 17.6k ->
 * 15.3k instructions per exchange). Strict, not declining: the callers always pass a
 * transport's bytes and a position in them, so anything else is a bug to be told. */
static PyObject *head_end(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "head_end() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyBytes_CheckExact(args[0]) || !PyLong_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "head_end() takes bytes and an int, not %.100s and %.100s",
                     Py_TYPE(args[0])->tp_name, Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    /* An int past Py_ssize_t either way: -1 and an OverflowError, which the ValueError
     * replaces (out of range as any other position). */
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos < 0 || pos > size) {
        PyErr_SetString(PyExc_ValueError, "head_end() position is outside the data");
        return NULL;
    }
    Ptr start = (Ptr)PyBytes_AS_STRING(args[0]), p = start + pos, end = start + size;
    /* Each CR that leaves room for the other three bytes: a head has one per line. */
    while (end - p >= 4) {
        Ptr cr = memchr(p, '\r', (size_t)(end - p - 3));
        if (cr == NULL)
            break;
        if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n')
            return PyLong_FromSsize_t(cr - start);
        p = cr + 1;
    }
    return PyLong_FromLong(-1);
}

PyDoc_STRVAR(request_doc,
             "request_head(head, /)\n--\n\n"
             "(method, target, minor_version, content_length, chunked, upgrade, upgrade_to, "
             "close, user_agent, traceparent, tracestate), as http1.py's reference parse of "
             "this request head; or None when the reference must parse it.");
PyDoc_STRVAR(response_doc,
             "response_head(head, /)\n--\n\n"
             "(status, close, content_length, chunked, event_stream), as http1.py's reference "
             "parse of this response head; or None when the reference must parse it.");
PyDoc_STRVAR(head_end_doc,
             "head_end(data, pos, /)\n--\n\n"
             "data.find(b\"\\r\\n\\r\\n\", pos): where the head at data[pos] ends (its "
             "CRLFCRLF's index), or -1. data is exactly bytes and 0 <= pos <= len(data): "
             "TypeError or ValueError otherwise.");

static PyMethodDef functions[] = {
    {"request_head", request_head, METH_O, request_doc},
    {"response_head", response_head, METH_O, response_doc},
    {"head_end", (PyCFunction)(void (*)(void))head_end, METH_FASTCALL, head_end_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_h1head",
    "The ambassador's C reader of HTTP/1.1 heads (http1.py is the reference).", -1,
    functions, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__h1head(void) {
    init_classes();
    for (size_t i = 0; i < N_METHODS; i++)
        if (methods[i] == NULL &&
            (methods[i] = PyBytes_FromString(METHODS[i])) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
