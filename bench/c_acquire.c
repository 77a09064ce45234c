/*
 * herd_acquire + herd_release of a bound session, from C: the median cost
 * of one pair, from one thread and from two threads at once (on the same
 * session, and on two sessions). Goal: <= 250 ns per pair (median).
 *
 * Each sample is timed twice: wall clock, and the thread's own CPU time
 * (CLOCK_THREAD_CPUTIME_ID), which leaves out the time the thread was not
 * running; on a shared, loaded machine the CPU figure is the one that
 * measures herd.
 *
 * Run (release build):  make -C herd-ffi bench
 * Quick smoke run:      c_acquire --quick   (what scripts/test.d/30-c.sh does)
 * Needs HERD_DEMO_WORKER=<path to herd-demo-worker>.
 */
#define _POSIX_C_SOURCE 200809L
#include <herd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SAMPLES 301

static int samples = MAX_SAMPLES;
static long batch = 20000;

static double clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct run {
    herd_pool_t *pool;
    const char *session;
    pthread_barrier_t *start;
    double wall_ns[MAX_SAMPLES], cpu_ns[MAX_SAMPLES];
    int failed;
};

/* Each sample times `batch` acquire+release pairs. */
static void *measure(void *p) {
    struct run *run = p;
    if (run->start) pthread_barrier_wait(run->start);
    for (int s = 0; s < samples; s++) {
        double wall = clock_ns(CLOCK_MONOTONIC), cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        for (long i = 0; i < batch; i++) {
            herd_lease_t *lease;
            if (herd_acquire(run->pool, run->session, HERD_TIMEOUT_DEFAULT, &lease) != HERD_STATUS_OK) {
                fprintf(stderr, "herd_acquire: %s\n", herd_last_error_message());
                run->failed = 1;
                return NULL;
            }
            herd_release(lease);
        }
        run->wall_ns[s] = (clock_ns(CLOCK_MONOTONIC) - wall) / (double)batch;
        run->cpu_ns[s] = (clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu) / (double)batch;
    }
    qsort(run->wall_ns, (size_t)samples, sizeof(double), by_value);
    qsort(run->cpu_ns, (size_t)samples, sizeof(double), by_value);
    return NULL;
}

static void report(const char *what, const struct run *run) {
    printf("%-38s cpu median %6.1f ns/pair (p10 %6.1f, p90 %6.1f) | wall median %6.1f (p10 %6.1f, p90 %7.1f)\n",
           what, run->cpu_ns[samples / 2], run->cpu_ns[samples / 10], run->cpu_ns[samples * 9 / 10],
           run->wall_ns[samples / 2], run->wall_ns[samples / 10], run->wall_ns[samples * 9 / 10]);
}

static int two_threads(herd_pool_t *pool, const char *a, const char *b, const char *what) {
    static struct run runs[2];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    pthread_t threads[2];
    const char *sessions[2] = {a, b};
    for (int t = 0; t < 2; t++) {
        memset(&runs[t], 0, sizeof runs[t]);
        runs[t].pool = pool;
        runs[t].session = sessions[t];
        runs[t].start = &start;
        pthread_create(&threads[t], NULL, measure, &runs[t]);
    }
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&start);
    if (runs[0].failed || runs[1].failed) return 1;
    char label[128];
    for (int t = 0; t < 2; t++) {
        snprintf(label, sizeof label, "%s, thread %d", what, t + 1);
        report(label, &runs[t]);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        samples = 11;
        batch = 200;
    }
    const char *worker = getenv("HERD_DEMO_WORKER");
    herd_config_t *config;
    herd_pool_t *pool;
    if (worker == NULL || herd_config_new(&config) != HERD_STATUS_OK ||
        herd_config_set_command(config, worker, NULL, 0) != HERD_STATUS_OK ||
        herd_config_set_min(config, 2) != HERD_STATUS_OK || herd_config_set_max(config, 2) != HERD_STATUS_OK ||
        herd_pool_new(config, &pool) != HERD_STATUS_OK) {
        fprintf(stderr, "set HERD_DEMO_WORKER to herd-demo-worker (%s)\n", herd_last_error_message());
        return 2;
    }
    herd_config_free(config);
    /* Bind both sessions; keep one lease open on each so they stay bound. */
    herd_lease_t *keep_a, *keep_b;
    if (herd_acquire(pool, "bench-a", HERD_TIMEOUT_DEFAULT, &keep_a) != HERD_STATUS_OK ||
        herd_acquire(pool, "bench-b", HERD_TIMEOUT_DEFAULT, &keep_b) != HERD_STATUS_OK) {
        fprintf(stderr, "bind: %s\n", herd_last_error_message());
        herd_pool_free(pool);
        return 1;
    }
    printf("herd %s: herd_acquire + herd_release on a bound session (goal: median <= 250 ns/pair)\n",
           herd_version());
    /* Figures from a loaded machine are not comparable: say how loaded it was. */
    FILE *loadavg = fopen("/proc/loadavg", "r");
    char load[64] = "unknown";
    if (loadavg != NULL) {
        if (fgets(load, sizeof load, loadavg) == NULL) snprintf(load, sizeof load, "unknown\n");
        fclose(loadavg);
    }
    printf("load average before the run: %s", load);
    printf("%d samples of %ld pairs per thread\n", samples, batch);
    static struct run one;
    one.pool = pool;
    one.session = "bench-a";
    measure(&one);
    int failed = one.failed;
    if (!failed) report("1 thread", &one);
    failed = failed || two_threads(pool, "bench-a", "bench-a", "2 threads, same session");
    failed = failed || two_threads(pool, "bench-a", "bench-b", "2 threads, two sessions");
    herd_release(keep_a);
    herd_release(keep_b);
    herd_pool_free(pool);
    return failed;
}
