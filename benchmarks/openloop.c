/* An open-loop load generator at a fixed rate, HTTP/1.1 or Redis, for benchmarks/bench_ambassador.py
   and benchmarks/bench_tcp.py.

   wrk2 (wrk with -R) is not packaged by Debian, wrk is closed loop (it sends the next request
   when the last one is answered, so a slow proxy is offered less load and its queueing never
   shows: "coordinated omission"), and h2load --rps paces but reports no percentiles. This does
   what wrk2 does, small enough to read: every request has a time it is due, fixed before the
   run (rate R over C keep-alive connections: connection c sends its k-th request at
   start + (k + c / C) * C / R); a request is sent at its due time or, when its connection is
   still waiting for the previous answer, as soon as that answer has arrived; its latency is
   from its due time to the last byte of its response. A proxy that falls behind therefore
   shows its queue in the latencies, as a real client with a fixed arrival rate would see it.

   One thread, epoll, and a timerfd for the next due time (nanosecond clock; the kernel's
   timer slack is 50 us, which is the resolution of "on time").

   The run ends at SECONDS: what was due by then and not sent (the proxy is behind), or not
   answered within 2 s more, is counted as unanswered, and counts in the percentiles as slower
   than any answer ("inf" when a percentile falls among them): past its saturation point a
   proxy's latency is unbounded, and the run's length stays fixed.

   usage: openloop PORT RATE SECONDS CONNECTIONS TARGET
   TARGET is an HTTP path (`GET PATH HTTP/1.1`, the response framed by its Content-Length) or
   `redis:KEY` (the inline command `GET KEY`, the reply a RESP bulk string `$N\r\n...\r\n`).
   prints one line: answered unanswered errors late seconds p50 p90 p99 p999 max (latencies in
   us), where late counts requests sent more than 1 ms after they were due. */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUFFER 65536
#define GRACE_NS 2000000000u  /* how long answers in flight at the end are waited for */

struct connection {
    int fd;
    uint64_t next_due;  /* ns, the due time of the next request this connection sends */
    uint64_t in_flight_due;  /* ns, the due time of the request awaiting its answer */
    int waiting;  /* a request was sent and its response is not complete */
    size_t have;  /* bytes of the current response read so far */
    long need;  /* its total length once the head is read, else -1 */
    char buffer[BUFFER];
};

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int compare(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The percentile over every request due in the run: answered ones (sorted) and unanswered
   ones, which rank above them all. Prints it in us, or "inf". */
static void print_percentile(const uint64_t *sorted, size_t answered, size_t unanswered,
                             double share) {
    size_t total = answered + unanswered, index = (size_t)(share * (double)total);
    if (index >= total && total > 0) index = total - 1;  /* share 1: the slowest */
    if (total == 0 || index >= answered) printf(" inf");
    else printf(" %.1f", (double)sorted[index] / 1e3);
}

/* The length of a response whose head ends in `buffer[0..have)`, or -1 if the head is
   incomplete; -2 when it has no Content-Length (not what the benchmark's upstream sends). */
static long response_length(const char *buffer, size_t have) {
    const char *end = memmem(buffer, have, "\r\n\r\n", 4);
    if (end == NULL) return -1;
    size_t head = (size_t)(end - buffer) + 4;
    for (const char *line = buffer; line < end; ) {
        const char *eol = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
        if (eol - line > 15 && strncasecmp(line, "content-length:", 15) == 0)
            return (long)head + strtol(line + 15, NULL, 10);
        line = eol + 2;
    }
    return -2;
}

/* The same for a RESP bulk string reply (`$N\r\n` then N bytes and `\r\n`); -2 for any other
   reply (an error, or a missing key: `$-1`). */
static long bulk_length(const char *buffer, size_t have) {
    const char *eol = memmem(buffer, have, "\r\n", 2);
    if (eol == NULL) return -1;
    if (buffer[0] != '$' || buffer[1] == '-') return -2;
    return (long)(eol - buffer) + 2 + strtol(buffer + 1, NULL, 10) + 2;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT RATE SECONDS CONNECTIONS PATH|redis:KEY\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), connections = atoi(argv[4]);
    double rate = atof(argv[2]), seconds = atof(argv[3]);
    int redis = strncmp(argv[5], "redis:", 6) == 0;
    long (*reply_length)(const char *, size_t) = redis ? bulk_length : response_length;
    char request[1024];
    int request_length = redis
        ? snprintf(request, sizeof request, "GET %s\r\n", argv[5] + 6)
        : snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", argv[5]);
    uint64_t interval = (uint64_t)(1e9 * connections / rate);  /* per connection */
    size_t planned = (size_t)(rate * seconds) + (size_t)connections;
    uint64_t *latencies = malloc(planned * sizeof *latencies);
    struct connection *pool = calloc((size_t)connections, sizeof *pool);
    int epoll = epoll_create1(0), timer = timerfd_create(CLOCK_MONOTONIC, 0);
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(epoll, EPOLL_CTL_ADD, timer, &event);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    for (int c = 0; c < connections; c++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
            perror("connect");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pool[c].fd = fd;
        pool[c].need = -1;
        event.events = EPOLLIN;
        event.data.u32 = (uint32_t)c;
        epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
    }
    uint64_t start = now_ns() + 10000000u, stop = start + (uint64_t)(seconds * 1e9);
    for (int c = 0; c < connections; c++)
        pool[c].next_due = start + interval * (uint64_t)c / (uint64_t)connections;
    size_t done = 0, errors = 0, late = 0;
    struct epoll_event ready[256];
    for (;;) {
        uint64_t now = now_ns(), earliest = UINT64_MAX;
        int busy = 0;
        if (now >= stop + GRACE_NS) break;
        for (int c = 0; c < connections; c++) {
            struct connection *conn = &pool[c];
            if (!conn->waiting && now < stop && conn->next_due < stop && conn->next_due <= now) {
                if (now - conn->next_due > 1000000u) late++;
                if (write(conn->fd, request, (size_t)request_length) != request_length) {
                    errors++;
                    conn->next_due = stop;  /* this connection is done */
                    continue;
                }
                conn->waiting = 1;
                conn->in_flight_due = conn->next_due;
                conn->next_due += interval;
            }
            if (conn->waiting) busy = 1;
            else if (now < stop && conn->next_due < stop && conn->next_due < earliest)
                earliest = conn->next_due;
        }
        if (!busy && (earliest == UINT64_MAX || now >= stop)) break;
        if (now >= stop) earliest = stop + GRACE_NS;  /* only answers in flight are left */
        if (earliest != UINT64_MAX) {
            struct itimerspec when = {.it_value = {.tv_sec = (time_t)(earliest / 1000000000u),
                                                   .tv_nsec = (long)(earliest % 1000000000u)}};
            timerfd_settime(timer, TFD_TIMER_ABSTIME, &when, NULL);
        }
        int count = epoll_wait(epoll, ready, 256, -1);
        for (int i = 0; i < count; i++) {
            uint32_t c = ready[i].data.u32;
            if (c == UINT32_MAX) {
                uint64_t expirations;
                if (read(timer, &expirations, sizeof expirations) < 0 && errno != EAGAIN) {
                    perror("timerfd");
                }
                continue;
            }
            struct connection *conn = &pool[c];
            ssize_t got = read(conn->fd, conn->buffer + conn->have, BUFFER - conn->have);
            if (got <= 0) {  /* closed or reset: count it and stop using this connection */
                errors++;
                conn->waiting = 0;
                conn->next_due = stop;
                epoll_ctl(epoll, EPOLL_CTL_DEL, conn->fd, NULL);
                continue;
            }
            conn->have += (size_t)got;
            if (conn->need < 0) conn->need = reply_length(conn->buffer, conn->have);
            if (conn->need == -2 || conn->have > (size_t)conn->need) {
                fprintf(stderr, "unexpected response: %.*s\n", (int)conn->have, conn->buffer);
                return 1;
            }
            if (conn->need >= 0 && conn->have == (size_t)conn->need) {
                if (done < planned) latencies[done++] = now_ns() - conn->in_flight_due;
                conn->waiting = 0;
                conn->have = 0;
                conn->need = -1;
            }
        }
    }
    size_t unanswered = 0;
    for (int c = 0; c < connections; c++) {
        if (pool[c].waiting) unanswered++;  /* sent, never answered */
        if (pool[c].next_due < stop)  /* due, never sent */
            unanswered += (stop - pool[c].next_due + interval - 1) / interval;
    }
    double seconds_run = (double)(stop - start) / 1e9;
    qsort(latencies, done, sizeof *latencies, compare);
    printf("%zu %zu %zu %zu %.3f", done, unanswered, errors, late, seconds_run);
    print_percentile(latencies, done, unanswered, 0.50);
    print_percentile(latencies, done, unanswered, 0.90);
    print_percentile(latencies, done, unanswered, 0.99);
    print_percentile(latencies, done, unanswered, 0.999);
    print_percentile(latencies, done, unanswered, 1.0);
    printf("\n");
    return 0;
}
