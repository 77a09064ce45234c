/*
 * A pool of demo workers from C: two sessions, each pinned to its own
 * worker process; talk to each over HTTP, print which PID served which
 * session, release, print stats.
 *
 * Run (scripts/test.d/30-c.sh builds and runs it too):
 *   make -C herd-ffi install PREFIX=/tmp/herd PROFILE=debug
 *   cargo build -p herd-core --bin herd-demo-worker
 *   cc examples/c/acquire.c $(PKG_CONFIG_PATH=/tmp/herd/lib/pkgconfig pkg-config --cflags --libs herd) -o acquire
 *   LD_LIBRARY_PATH=/tmp/herd/lib ./acquire target/debug/herd-demo-worker
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <herd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* GET / from the worker on 127.0.0.1:port; the demo worker answers with JSON. */
static int get(uint16_t port, const char *session, char *body, size_t cap) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return -1;
    char req[256];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Session-ID: %s\r\n"
                                      "Connection: close\r\n\r\n", session);
    size_t got = 0;
    ssize_t r = write(fd, req, (size_t)n);
    while (r > 0 && got < cap - 1 && (r = read(fd, body + got, cap - 1 - got)) > 0) got += (size_t)r;
    close(fd);
    body[got] = '\0';
    char *start = strstr(body, "\r\n\r\n");
    if (start == NULL) return -1;
    memmove(body, start + 4, strlen(start + 4) + 1);
    return 0;
}

static int fail(const char *what, herd_status_t status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, herd_status_str(status), herd_last_error_message());
    return 1;
}

int main(int argc, char **argv) {
    const char *worker = argc > 1 ? argv[1] : "herd-demo-worker";
    herd_config_t *config;
    herd_pool_t *pool;
    herd_status_t st = herd_config_new(&config);
    if (st == HERD_STATUS_OK) st = herd_config_set_command(config, worker, NULL, 0);
    if (st == HERD_STATUS_OK) st = herd_config_set_min(config, 2);
    if (st == HERD_STATUS_OK) st = herd_config_set_max(config, 4);
    if (st != HERD_STATUS_OK) return fail("config", st);
    st = herd_pool_new(config, &pool);
    herd_config_free(config); /* the pool keeps its own copy */
    if (st != HERD_STATUS_OK) return fail("herd_pool_new", st);
    printf("herd %s\n", herd_version());

    const char *sessions[] = {"alice", "bob", "alice"};
    for (int i = 0; i < 3; i++) {
        herd_lease_t *lease;
        st = herd_acquire(pool, sessions[i], HERD_TIMEOUT_DEFAULT, &lease);
        if (st != HERD_STATUS_OK) {
            herd_pool_free(pool);
            return fail("herd_acquire", st);
        }
        char body[2048];
        if (get(herd_lease_port(lease), sessions[i], body, sizeof body) != 0) snprintf(body, sizeof body, "(no answer)");
        printf("session %-5s -> worker w%llu, pid %u, %s: %s\n", sessions[i],
               (unsigned long long)herd_lease_worker_id(lease), herd_lease_pid(lease), herd_lease_url(lease), body);
        herd_release(lease); /* the session stays bound to its worker */
    }

    herd_stats_t stats = {.size = sizeof stats};
    st = herd_stats(pool, &stats);
    if (st == HERD_STATUS_OK)
        printf("stats: %llu workers (%llu bound, %llu idle), %llu sessions, %llu bindings made\n",
               (unsigned long long)stats.workers_total, (unsigned long long)stats.workers_bound,
               (unsigned long long)stats.workers_idle, (unsigned long long)stats.sessions,
               (unsigned long long)stats.sessions_bound);
    herd_pool_free(pool); /* shuts down: every worker process is gone when it returns */
    return st == HERD_STATUS_OK ? 0 : fail("herd_stats", st);
}
