/*
 * Helpers for herd's C tests: checks that report and bail out, a tiny
 * HTTP/1.1 client for the demo worker, and waiting for conditions.
 * Header-only (static functions) so each test program is one file.
 */
#ifndef HERD_TESTUTIL_H
#define HERD_TESTUTIL_H

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "herd.h"

static int test_failures;

/* Fails the current test function (which returns void) with a message. */
#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "    FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            test_failures++;                                                          \
            return;                                                                   \
        }                                                                             \
    } while (0)

/* Fails unless `call` returns `expected`; shows herd's message. */
#define CHECK_STATUS(call, expected)                                                  \
    do {                                                                              \
        herd_status_t got_ = (call);                                                  \
        if (got_ != (expected)) {                                                     \
            fprintf(stderr, "    FAIL %s:%d: %s returned %s, want %s: %s\n", __FILE__, \
                    __LINE__, #call, herd_status_str(got_), herd_status_str(expected), \
                    herd_last_error_message());                                       \
            test_failures++;                                                          \
            return;                                                                   \
        }                                                                             \
    } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, HERD_STATUS_OK)

/* Fails unless `call` returns `expected` with a message containing `part`. */
#define CHECK_FAILS(call, expected, part)                                             \
    do {                                                                              \
        CHECK_STATUS(call, expected);                                                 \
        CHECK(strstr(herd_last_error_message(), (part)) != NULL,                      \
              "message %s should mention %s", herd_last_error_message(), (part));     \
    } while (0)

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Polls `cond` every 5 ms for up to `timeout_ms`; sets `held` to whether it held. */
#define WAIT_UNTIL(held, cond, timeout_ms)                                            \
    do {                                                                              \
        uint64_t deadline_ = now_ms() + (timeout_ms);                                 \
        while (!((held) = (cond)) && now_ms() < deadline_) sleep_ms(5);               \
    } while (0)

/*
 * One HTTP/1.1 request to 127.0.0.1:port (Connection: close). Writes the
 * status code and up to cap-1 bytes of the body. Returns 0, or -1 with a
 * reason in `body`.
 */
static int http_request(uint16_t port, const char *method, const char *path, const char *session,
                        const char *payload, int *status, char *body, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(body, cap, "socket: %s", strerror(errno));
        return -1;
    }
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        snprintf(body, cap, "connect to port %u: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    char request[1024];
    size_t payload_len = payload ? strlen(payload) : 0;
    int n = snprintf(request, sizeof request,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
                     "%s%s%sContent-Length: %zu\r\n\r\n%s",
                     method, path, port, session ? "X-Session-ID: " : "", session ? session : "",
                     session ? "\r\n" : "", payload_len, payload ? payload : "");
    if (send(fd, request, (size_t)n, 0) != n) {
        snprintf(body, cap, "send: %s", strerror(errno));
        close(fd);
        return -1;
    }
    char response[8192];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof response - 1 && (r = recv(fd, response + got, sizeof response - 1 - got, 0)) > 0)
        got += (size_t)r;
    close(fd);
    response[got] = '\0';
    const char *head_end = strstr(response, "\r\n\r\n");
    if (strncmp(response, "HTTP/1.1 ", 9) != 0 || head_end == NULL) {
        snprintf(body, cap, "bad response: %.100s", response);
        return -1;
    }
    *status = atoi(response + 9);
    snprintf(body, cap, "%s", head_end + 4);
    return 0;
}

/* The "pid" the demo worker reports in its GET / identity, or 0. */
static uint32_t worker_reported_pid(uint16_t port, const char *session) {
    char body[2048];
    int status = 0;
    if (http_request(port, "GET", "/", session, NULL, &status, body, sizeof body) != 0 || status != 200)
        return 0;
    const char *p = strstr(body, "\"pid\":");
    return p ? (uint32_t)strtoul(p + 6, NULL, 10) : 0;
}

/* Whether a process exists (a zombie counts). */
static int process_exists(uint32_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%u", pid);
    return access(path, F_OK) == 0;
}

/* The demo worker binary, from $HERD_DEMO_WORKER. */
static const char *demo_worker(void) {
    const char *path = getenv("HERD_DEMO_WORKER");
    if (path == NULL || *path == '\0') {
        fprintf(stderr, "set HERD_DEMO_WORKER to the herd-demo-worker binary\n");
        exit(2);
    }
    return path;
}

/* A config for the demo worker: quick health checks, short grace. */
static herd_config_t *demo_config(size_t min, size_t max) {
    herd_config_t *config = NULL;
    if (herd_config_new(&config) != HERD_STATUS_OK ||
        herd_config_set_command(config, demo_worker(), NULL, 0) != HERD_STATUS_OK ||
        herd_config_set_min(config, min) != HERD_STATUS_OK ||
        herd_config_set_max(config, max) != HERD_STATUS_OK ||
        herd_config_set_health_interval_ms(config, 200) != HERD_STATUS_OK ||
        herd_config_set_stop_grace_ms(config, 2000) != HERD_STATUS_OK) {
        fprintf(stderr, "demo_config: %s\n", herd_last_error_message());
        exit(2);
    }
    return config;
}

static herd_stats_t pool_stats(const herd_pool_t *pool) {
    herd_stats_t stats;
    memset(&stats, 0, sizeof stats);
    stats.size = sizeof stats;
    if (herd_stats(pool, &stats) != HERD_STATUS_OK) {
        fprintf(stderr, "herd_stats: %s\n", herd_last_error_message());
        exit(2);
    }
    return stats;
}

#endif
