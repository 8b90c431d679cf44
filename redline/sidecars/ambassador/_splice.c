/* The ambassador's opaque relay out of the interpreter: one thread, epoll over every relayed
 * connection pair, splice(2) socket -> pipe -> socket each way, so a chunk costs no Python
 * callback, no bytes object and no GIL (relay.py is the Python side and says when a pair is
 * handed over; passthrough.py's asyncio relay is the fallback with the same behaviour).
 *
 * A pair is the client's socket and the upstream's, both owned by the relay once added. Per
 * direction: a pipe, the bytes in it not yet written on, the bytes read (the TCP metrics),
 * whether the source ended. Half close: the source's EOF becomes shutdown(SHUT_WR) on the other
 * side once the pipe is empty; the pair ends when both directions have. An error on either
 * side (a reset, a write to a closed peer) resets both (SO_LINGER 0), so neither peer takes a
 * cut stream for a clean end. Python may ask to close a pair (flush, then FIN) or abort it
 * (RST): the idle timeout and drain. Every end is queued as (id, received, sent, errno) and
 * signalled on an eventfd that the asyncio loop reads.
 *
 * Threads: Python calls in with the GIL held and takes `lock` only briefly; the relay thread
 * never touches Python. The relay thread alone frees pairs, under `lock`, and only after the
 * epoll batch that could still name them.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 65536 /* slots; an id is (sequence << 16) | slot */
#define CHUNK (1 << 16) /* bytes asked of one splice; a pipe holds 64 KiB by default */
#define BUFFER (1 << 14) /* copy mode: bytes per direction, as nginx's proxy_buffer_size */
#define TURNS 16        /* chunks per direction before other pairs get their turn */
#define EVENTS 256
#define BOTH 3          /* directions: bit d for direction d */

enum { TO_UPSTREAM = 0, TO_CLIENT = 1 }; /* direction d reads fd[d], writes fd[1 - d] */

typedef struct Pair {
    uint64_t id;
    int fd[2];         /* client, upstream */
    int pipe[2][2];    /* splice mode, per direction: read end, write end */
    char *buffer[2];   /* copy mode, per direction: BUFFER bytes */
    size_t start[2];   /* copy mode: the first byte of the buffer not yet written */
    size_t pending[2]; /* bytes read from fd[d] and not yet written to the other side */
    uint64_t bytes[2]; /* read from fd[d]: received from the client, sent to it */
    char drained[2];   /* copy mode: the last read of fd[d] was short, so it was empty then */
    char fin[2];       /* fd[d]'s EOF has arrived (EPOLLRDHUP): a short read says nothing */
    char ended[2];     /* fd[d] sent its EOF */
    char shut[2];      /* ... and the other side got it (flushed, SHUT_WR) */
    char closing;      /* Python asked to close: read no more, flush, close */
    char done;         /* finished in this batch: skip its later events */
    char queued;       /* in the ready list: stopped after TURNS, not at EAGAIN */
    int error;         /* errno that ends the pair with resets */
    struct Pair *next_ready;
    struct Pair *next_dead; /* in the graveyard: a finished pair may still be in a ready list */
} Pair;

typedef struct { uint64_t id; uint64_t received, sent; int error; } Ended;
enum { START, CLOSE, ABORT }; /* what Python asks of the relay thread */
typedef struct { uint64_t id; int what; } Request;

typedef struct {
    PyObject_HEAD
    int epoll, wake, ended_fd; /* wake: Python -> thread; ended_fd: thread -> loop */
    int use_splice;            /* splice(2) through pipes, or recv/send through buffers */
    pthread_t thread;
    int running;
    pthread_mutex_t lock; /* pairs[], sequence, ended list, requests, stop */
    Pair **pairs;
    uint64_t sequence;
    Py_ssize_t count;
    Ended *ended; Py_ssize_t n_ended, cap_ended;
    Request *requests; Py_ssize_t n_requests, cap_requests;
    int stop;
    Pair *graveyard; /* finished in this batch, freed after it (relay thread only) */
} Relay;

static int grow(void **array, Py_ssize_t *capacity, Py_ssize_t used, size_t size) {
    if (used < *capacity) return 0;
    Py_ssize_t want = *capacity ? *capacity * 2 : 64;
    void *bigger = realloc(*array, (size_t)want * size);
    if (bigger == NULL) return -1;
    *array = bigger;
    *capacity = want;
    return 0;
}

static void fail(Pair *p, int error) { if (!p->error) p->error = error ? error : EIO; }

static ssize_t write_out(Relay *r, Pair *p, int d) {
    int dst = p->fd[1 - d];
    if (r->use_splice)
        return splice(p->pipe[d][0], NULL, dst, NULL, p->pending[d],
                      SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    return send(dst, p->buffer[d] + p->start[d], p->pending[d], MSG_NOSIGNAL | MSG_DONTWAIT);
}

static ssize_t read_in(Relay *r, Pair *p, int d) {
    if (r->use_splice)
        return splice(p->fd[d], NULL, p->pipe[d][1], NULL, CHUNK,
                      SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    p->start[d] = 0;
    return recv(p->fd[d], p->buffer[d], BUFFER, MSG_DONTWAIT);
}

/* Move what direction d can move now; stops when the source is empty or the destination
 * full, at an end or an error, or after TURNS chunks (returns 1: ET will not say so again). */
static int pump_direction(Relay *r, Pair *p, int d) {
    for (int turn = 0; turn < TURNS; turn++) {
        if (p->pending[d]) {
            ssize_t n = write_out(r, p, d);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN) fail(p, errno);
                return 0; /* the destination is full: its EPOLLOUT brings us back */
            }
            p->pending[d] -= (size_t)n;
            p->start[d] += (size_t)n;
            if (p->pending[d]) return 0; /* a short write: full, as above */
            continue;
        }
        if (p->ended[d]) {
            if (!p->shut[d]) {
                p->shut[d] = 1;
                if (shutdown(p->fd[1 - d], SHUT_WR) < 0 && errno != ENOTCONN) fail(p, errno);
            }
            return 0;
        }
        /* A short read emptied the socket of data: a read now would only say EAGAIN, and data
         * arriving since raises a new EPOLLIN edge, which clears this. Not once the peer's FIN
         * is in (it may have come with that data: only the next read says 0), nor in splice
         * mode (a pipe may take less than the socket has, its slots: only EAGAIN says empty). */
        if (p->closing || p->drained[d]) return 0;
        ssize_t n = read_in(r, p, d);
        if (n == 0) { p->ended[d] = 1; continue; }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) fail(p, errno);
            return 0; /* the source is empty: its EPOLLIN brings us back */
        }
        p->pending[d] = (size_t)n;
        p->drained[d] = !r->use_splice && n < BUFFER && !p->fin[d];
        __atomic_store_n(&p->bytes[d], p->bytes[d] + (uint64_t)n, __ATOMIC_RELAXED);
    }
    return 1;
}

static void release(Pair *p) {
    for (int d = 0; d < 2; d++) {
        for (int end = 0; end < 2; end++)
            if (p->pipe[d][end] >= 0) close(p->pipe[d][end]);
        free(p->buffer[d]);
    }
}

static void finish(Relay *r, Pair *p, int reset) {
    static const struct linger hard = {1, 0};
    p->done = 1;
    for (int side = 0; side < 2; side++) {
        epoll_ctl(r->epoll, EPOLL_CTL_DEL, p->fd[side], NULL);
        if (reset) setsockopt(p->fd[side], SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        close(p->fd[side]);
    }
    release(p);
    pthread_mutex_lock(&r->lock);
    r->pairs[p->id & (MAX_PAIRS - 1)] = NULL;
    r->count--;
    if (grow((void **)&r->ended, &r->cap_ended, r->n_ended, sizeof(Ended)) == 0)
        r->ended[r->n_ended++] = (Ended){p->id, p->bytes[0], p->bytes[1], p->error};
    pthread_mutex_unlock(&r->lock);
    p->next_dead = r->graveyard;
    r->graveyard = p;
    uint64_t one = 1;
    (void)!write(r->ended_fd, &one, sizeof one);
}

/* Pump the directions in `which` (bits); returns 1 when it stopped early and needs another
 * turn. */
static int pump(Relay *r, Pair *p, int which) {
    int again = 0;
    for (int d = 0; d < 2 && !p->error; d++)
        if (which & (1 << d)) again |= pump_direction(r, p, d);
    if (p->error) { finish(r, p, 1); return 0; }
    int flushed = !p->pending[0] && !p->pending[1];
    if ((p->shut[0] && p->shut[1]) || (p->closing && flushed)) { finish(r, p, 0); return 0; }
    return again;
}

/* Python's close and abort requests; returns 1 when asked to stop. */
static int take_requests(Relay *r, Pair **ready) {
    uint64_t count;
    (void)!read(r->wake, &count, sizeof count);
    pthread_mutex_lock(&r->lock);
    int stop = r->stop;
    Py_ssize_t n = r->n_requests;
    Request *requests = r->requests;
    r->requests = NULL; r->n_requests = 0; r->cap_requests = 0;
    pthread_mutex_unlock(&r->lock);
    for (Py_ssize_t i = 0; i < n; i++) {
        Pair *p = r->pairs[requests[i].id & (MAX_PAIRS - 1)];
        if (p == NULL || p->id != requests[i].id || p->done) continue; /* already ended */
        if (requests[i].what == ABORT) { finish(r, p, 1); continue; }
        if (requests[i].what == START) {
            /* Edge-triggered: registering reports what is ready now; the pump sees the rest. */
            for (int side = 0; side < 2 && !p->error; side++) {
                struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                            .data.u64 = (uint64_t)(uintptr_t)p | (uint64_t)side};
                if (epoll_ctl(r->epoll, EPOLL_CTL_ADD, p->fd[side], &event) < 0) fail(p, errno);
            }
            if (p->error) { finish(r, p, 1); continue; }
        } else {
            p->closing = 1;
        }
        if (!p->queued) { p->queued = 1; p->next_ready = *ready; *ready = p; }
    }
    free(requests);
    return stop;
}

/* A failed socket reports EPOLLERR; splice may not see it when nothing is to move. */
static void check_error(Pair *p) {
    for (int side = 0; side < 2 && !p->error; side++) {
        int error = 0;
        socklen_t size = sizeof error;
        if (getsockopt(p->fd[side], SOL_SOCKET, SO_ERROR, &error, &size) < 0) error = errno;
        if (error) fail(p, error);
    }
}

static void *relay_thread(void *arg) {
    Relay *r = arg;
    struct epoll_event events[EVENTS];
    Pair *ready = NULL; /* pairs to pump again without waiting for an event */
    for (;;) {
        int n = epoll_wait(r->epoll, events, EVENTS, ready ? 0 : -1);
        if (n < 0) {
            if (errno != EINTR) break;
            n = 0;
        }
        Pair *again = NULL;
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == 0) {
                if (take_requests(r, &ready)) return NULL; /* stop */
                continue;
            }
            /* The pair, and in the pointer's low bit which of its sockets the event is for. */
            Pair *p = (Pair *)(uintptr_t)(events[i].data.u64 & ~(uint64_t)1);
            int side = (int)(events[i].data.u64 & 1);
            uint32_t what = events[i].events;
            if (p->done) continue;
            if (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) p->drained[side] = 0; /* news to read */
            if (what & (EPOLLRDHUP | EPOLLERR | EPOLLHUP)) p->fin[side] = 1;
            if (p->queued) continue; /* the ready list pumps both directions anyway */
            int which = 0;
            if (what & (EPOLLERR | EPOLLHUP)) {
                check_error(p);
                which = BOTH;
            }
            if (what & EPOLLIN) which |= 1 << side;       /* read this side */
            if (what & EPOLLOUT) which |= 1 << (1 - side); /* write to this side */
            if (pump(r, p, which)) { p->queued = 1; p->next_ready = again; again = p; }
        }
        while (ready != NULL) {
            Pair *p = ready;
            ready = p->next_ready;
            p->queued = 0;
            if (!p->done && pump(r, p, BOTH)) {
                p->queued = 1;
                p->next_ready = again;
                again = p;
            }
        }
        ready = again;
        /* No event of this batch names a finished pair any more; one still in the ready list
         * (finished by an abort after it was queued) is freed once that list has passed it. */
        Pair **grave = &r->graveyard;
        while (*grave != NULL) {
            Pair *p = *grave;
            if (p->queued) { grave = &p->next_dead; continue; }
            *grave = p->next_dead;
            free(p);
        }
    }
    return NULL;
}

/* --- Python's side ------------------------------------------------------------------------ */

static int request(Relay *r, uint64_t id, int what) {
    pthread_mutex_lock(&r->lock);
    int ok = grow((void **)&r->requests, &r->cap_requests, r->n_requests, sizeof(Request)) == 0;
    if (ok) r->requests[r->n_requests++] = (Request){id, what};
    pthread_mutex_unlock(&r->lock);
    uint64_t one = 1;
    if (ok) (void)!write(r->wake, &one, sizeof one);
    return ok;
}

static void Relay_dealloc(Relay *r) {
    if (r->running) {
        pthread_mutex_lock(&r->lock);
        r->stop = 1;
        pthread_mutex_unlock(&r->lock);
        uint64_t one = 1;
        (void)!write(r->wake, &one, sizeof one);
        Py_BEGIN_ALLOW_THREADS
        pthread_join(r->thread, NULL);
        Py_END_ALLOW_THREADS
    }
    if (r->pairs != NULL) {
        for (Py_ssize_t slot = 0; slot < MAX_PAIRS; slot++) {
            Pair *p = r->pairs[slot];
            if (p == NULL) continue;
            for (int side = 0; side < 2; side++) close(p->fd[side]);
            release(p);
            free(p);
        }
    }
    while (r->graveyard != NULL) {
        Pair *p = r->graveyard;
        r->graveyard = p->next_dead;
        free(p);
    }
    for (int *fd = &r->epoll; fd <= &r->ended_fd; fd++)
        if (*fd >= 0) close(*fd);
    free(r->pairs);
    free(r->ended);
    free(r->requests);
    pthread_mutex_destroy(&r->lock);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *Relay_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"splice", NULL};
    int use_splice = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:Relay", keywords, &use_splice))
        return NULL;
    Relay *r = (Relay *)type->tp_alloc(type, 0);
    if (r == NULL) return NULL;
    r->use_splice = use_splice;
    r->epoll = r->wake = r->ended_fd = -1;
    pthread_mutex_init(&r->lock, NULL);
    r->pairs = calloc(MAX_PAIRS, sizeof(Pair *));
    if (r->pairs == NULL) { Py_DECREF(r); return PyErr_NoMemory(); }
    r->epoll = epoll_create1(EPOLL_CLOEXEC);
    r->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->ended_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event wake = {.events = EPOLLIN, .data.u64 = 0}; /* no pair: a request */
    if (r->epoll < 0 || r->wake < 0 || r->ended_fd < 0
            || epoll_ctl(r->epoll, EPOLL_CTL_ADD, r->wake, &wake) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(r);
        return NULL;
    }
    /* Signals are the main thread's business (SIGTERM drains through the asyncio loop). */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    int error = pthread_create(&r->thread, NULL, relay_thread, r);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (error) {
        errno = error;
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(r);
        return NULL;
    }
    r->running = 1;
    return (PyObject *)r;
}

PyDoc_STRVAR(add_doc, "add(client_fd, upstream_fd) -> id\n\n"
"Relay between two connected non-blocking sockets from now on; the relay owns both fds\n"
"from here (it closes them when the pair ends). OSError: not taken, the caller keeps them.");

static PyObject *Relay_add(Relay *r, PyObject *args) {
    int client, upstream;
    if (!PyArg_ParseTuple(args, "ii:add", &client, &upstream)) return NULL;
    Pair *p = calloc(1, sizeof(Pair));
    if (p == NULL) return PyErr_NoMemory();
    p->fd[0] = client;
    p->fd[1] = upstream;
    memset(p->pipe, -1, sizeof p->pipe);
    for (int d = 0; d < 2; d++) {
        int failed = r->use_splice ? pipe2(p->pipe[d], O_NONBLOCK | O_CLOEXEC) < 0
                                   : (p->buffer[d] = malloc(BUFFER)) == NULL;
        if (failed) {
            if (r->use_splice) PyErr_SetFromErrno(PyExc_OSError);
            else PyErr_NoMemory();
            release(p);
            free(p);
            return NULL;
        }
    }
    pthread_mutex_lock(&r->lock);
    Py_ssize_t slot = -1;
    if (r->count < MAX_PAIRS) {
        for (uint64_t probe = 0; probe < MAX_PAIRS; probe++) {
            uint64_t candidate = (r->sequence + probe) & (MAX_PAIRS - 1);
            if (r->pairs[candidate] == NULL) { slot = (Py_ssize_t)candidate; break; }
        }
    }
    if (slot >= 0) {
        r->sequence++;
        p->id = (r->sequence << 16) | (uint64_t)slot;
        r->pairs[slot] = p;
        r->count++;
    }
    pthread_mutex_unlock(&r->lock);
    if (slot < 0) {
        release(p);
        free(p);
        errno = EMFILE;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    uint64_t id = p->id; /* the relay thread owns p from here */
    if (!request(r, id, START)) { /* never seen by the thread: undo, the caller keeps the fds */
        pthread_mutex_lock(&r->lock);
        r->pairs[slot] = NULL;
        r->count--;
        pthread_mutex_unlock(&r->lock);
        release(p);
        free(p);
        return PyErr_NoMemory();
    }
    return PyLong_FromUnsignedLongLong(id);
}

PyDoc_STRVAR(counts_doc, "counts(id) -> (received, sent) | None\n\n"
"Bytes read from the client and from the upstream so far; None once the pair ended.");

static PyObject *Relay_counts(Relay *r, PyObject *arg) {
    uint64_t id = PyLong_AsUnsignedLongLong(arg);
    if (id == (uint64_t)-1 && PyErr_Occurred()) return NULL;
    uint64_t received = 0, sent = 0;
    pthread_mutex_lock(&r->lock);
    Pair *p = r->pairs[id & (MAX_PAIRS - 1)];
    int found = p != NULL && p->id == id;
    if (found) {
        received = __atomic_load_n(&p->bytes[0], __ATOMIC_RELAXED);
        sent = __atomic_load_n(&p->bytes[1], __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&r->lock);
    if (!found) Py_RETURN_NONE;
    return Py_BuildValue("(KK)", (unsigned long long)received, (unsigned long long)sent);
}

PyDoc_STRVAR(close_doc, "close(id, abort) -> None\n\n"
"Ask to end a pair: abort resets both sides now; otherwise it reads no more, writes what it\n"
"holds, then closes. Its end is reported by ended() as any other. Unknown ids are ignored.");

static PyObject *Relay_close(Relay *r, PyObject *args) {
    unsigned long long id;
    int abort;
    if (!PyArg_ParseTuple(args, "Kp:close", &id, &abort)) return NULL;
    if (!request(r, id, abort ? ABORT : CLOSE)) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ended_doc, "ended() -> list of (id, received, sent, errno)\n\n"
"Pairs that ended since the last call (errno 0: both sides ended cleanly or Python asked);\n"
"call when fileno() is readable.");

static PyObject *Relay_ended(Relay *r, PyObject *unused) {
    (void)unused;
    uint64_t count;
    (void)!read(r->ended_fd, &count, sizeof count);
    pthread_mutex_lock(&r->lock);
    Ended *ended = r->ended;
    Py_ssize_t n = r->n_ended;
    r->ended = NULL; r->n_ended = 0; r->cap_ended = 0;
    pthread_mutex_unlock(&r->lock);
    PyObject *list = PyList_New(n);
    for (Py_ssize_t i = 0; list != NULL && i < n; i++) {
        PyObject *item = Py_BuildValue("(KKKi)", (unsigned long long)ended[i].id,
                                       (unsigned long long)ended[i].received,
                                       (unsigned long long)ended[i].sent, ended[i].error);
        if (item == NULL) Py_CLEAR(list);
        else PyList_SET_ITEM(list, i, item);
    }
    free(ended);
    return list;
}

static PyObject *Relay_fileno(Relay *r, PyObject *unused) {
    (void)unused;
    return PyLong_FromLong(r->ended_fd);
}

static PyMethodDef Relay_methods[] = {
    {"add", (PyCFunction)Relay_add, METH_VARARGS, add_doc},
    {"counts", (PyCFunction)Relay_counts, METH_O, counts_doc},
    {"close", (PyCFunction)Relay_close, METH_VARARGS, close_doc},
    {"ended", (PyCFunction)Relay_ended, METH_NOARGS, ended_doc},
    {"fileno", (PyCFunction)Relay_fileno, METH_NOARGS,
     "The eventfd readable when pairs ended (for the asyncio loop's add_reader)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RelayType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "redline.sidecars.ambassador._splice.Relay",
    .tp_basicsize = sizeof(Relay),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Relay(splice=True): one thread relaying every added pair of sockets both ways,\n"
              "with splice(2) through a pipe per direction, or (splice=False) recv/send\n"
              "through a 16 KiB buffer per direction.",
    .tp_new = Relay_new,
    .tp_dealloc = (destructor)Relay_dealloc,
    .tp_methods = Relay_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_splice",
    "The ambassador's opaque relay: splice(2) on one thread, outside the interpreter.",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__splice(void) {
    if (PyType_Ready(&RelayType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&RelayType);
    if (PyModule_AddObject(m, "Relay", (PyObject *)&RelayType) < 0) {
        Py_DECREF(&RelayType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
