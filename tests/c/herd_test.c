/*
 * herd's C API, tested from C with real worker processes.
 *
 *   HERD_DEMO_WORKER=target/debug/herd-demo-worker ./herd_test [test-name...]
 *
 * scripts/test.d/30-c.sh builds it against libherd.so and runs it, plain
 * and under valgrind memcheck. Each test states the behaviour it proves.
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------------ */
/* version_and_names: the header's version macros are the library's version,
 * and every status / reason / state has its stable name. */

static void version_and_names(void) {
    char composed[64];
    snprintf(composed, sizeof composed, "%d.%d.%d", HERD_VERSION_MAJOR, HERD_VERSION_MINOR,
             HERD_VERSION_PATCH);
    CHECK(strcmp(composed, HERD_VERSION) == 0, "macros %s vs HERD_VERSION %s", composed, HERD_VERSION);
    CHECK(strcmp(herd_version(), HERD_VERSION) == 0, "library %s, header %s", herd_version(), HERD_VERSION);
    CHECK(strcmp(herd_status_str(HERD_STATUS_OK), "ok") == 0, "%s", herd_status_str(HERD_STATUS_OK));
    CHECK(strcmp(herd_status_str(HERD_STATUS_ACQUIRE_TIMEOUT), "acquire_timeout") == 0, "names");
    CHECK(strcmp(herd_status_str(HERD_STATUS_FORKED), "forked") == 0, "names");
    CHECK(strcmp(herd_status_str(HERD_STATUS_INVALID_ARGUMENT), "invalid_argument") == 0, "names");
    CHECK(strcmp(herd_status_str(HERD_STATUS_PANIC), "panic") == 0, "names");
    CHECK(strcmp(herd_status_str(12345), "unknown") == 0, "unknown numbers are named");
    CHECK(strcmp(herd_end_reason_str(HERD_END_CRASHED), "crashed") == 0, "reasons");
    CHECK(strcmp(herd_end_reason_str(HERD_END_IDLE_TIMEOUT), "idle_timeout") == 0, "reasons");
    CHECK(strcmp(herd_end_reason_str(0), "unknown") == 0, "reasons");
    CHECK(strcmp(herd_worker_state_str(HERD_WORKER_BOUND), "bound") == 0, "states");
    CHECK(strcmp(herd_worker_state_str(99), "unknown") == 0, "states");
    CHECK(HERD_STATUS_OK == 0 && HERD_STATUS_INVALID_SESSION_ID == 1 && HERD_STATUS_INTERNAL == 11 &&
              HERD_STATUS_INVALID_ARGUMENT == 100,
          "status numbers are stable");
}

/* ------------------------------------------------------------------------ */
/* bad_config_input: every bad argument to the config and pool constructors
 * returns its documented status with a message, and writes no output. */

static void bad_config_input(void) {
    herd_config_t *config = NULL;
    CHECK_FAILS(herd_config_new(NULL), HERD_STATUS_INVALID_ARGUMENT, "config_out is NULL");
    CHECK_FAILS(herd_config_set_min(NULL, 1), HERD_STATUS_INVALID_ARGUMENT, "config is NULL");
    CHECK_FAILS(herd_config_set_ttl_ms(NULL, 10), HERD_STATUS_INVALID_ARGUMENT, "config is NULL");
    CHECK_OK(herd_config_new(&config));
    CHECK(strcmp(herd_last_error_message(), "") == 0, "success clears the message: %s", herd_last_error_message());

    const char *args[] = {"--port", NULL};
    CHECK_FAILS(herd_config_set_command(config, NULL, NULL, 0), HERD_STATUS_INVALID_ARGUMENT, "program is NULL");
    CHECK_FAILS(herd_config_set_command(config, "x", NULL, 2), HERD_STATUS_INVALID_ARGUMENT, "args is NULL");
    CHECK_FAILS(herd_config_set_command(config, "x", args, 2), HERD_STATUS_INVALID_ARGUMENT, "args[1] is NULL");
    CHECK_FAILS(herd_config_set_command(config, "bad\xff", NULL, 0), HERD_STATUS_INVALID_ARGUMENT,
                "program is not valid UTF-8");
    CHECK_FAILS(herd_config_set_env(config, "A=B", "v"), HERD_STATUS_INVALID_ARGUMENT, "environment variable");
    CHECK_FAILS(herd_config_set_env(config, "A", NULL), HERD_STATUS_INVALID_ARGUMENT, "value is NULL");
    CHECK_FAILS(herd_config_set_ttl_ms(config, HERD_MAX_DURATION_MS + 1), HERD_STATUS_INVALID_ARGUMENT,
                "HERD_MAX_DURATION_MS");
    CHECK_FAILS(herd_config_on_session_end(config, NULL, NULL, NULL), HERD_STATUS_INVALID_ARGUMENT,
                "callback is NULL");

    herd_pool_t *const sentinel = (herd_pool_t *)&config;
    herd_pool_t *pool = sentinel;
    CHECK_FAILS(herd_pool_new(config, &pool), HERD_STATUS_INVALID_CONFIG, "no worker command");
    CHECK(pool == sentinel, "a failed call leaves its out-parameter alone");
    CHECK_FAILS(herd_pool_new(NULL, &pool), HERD_STATUS_INVALID_ARGUMENT, "config is NULL");
    CHECK_FAILS(herd_pool_new(config, NULL), HERD_STATUS_INVALID_ARGUMENT, "pool_out is NULL");

    CHECK_OK(herd_config_set_command(config, demo_worker(), NULL, 0));
    CHECK_OK(herd_config_set_min(config, 5));
    CHECK_OK(herd_config_set_max(config, 2));
    CHECK_FAILS(herd_pool_new(config, &pool), HERD_STATUS_INVALID_CONFIG, "min (5)");
    CHECK_OK(herd_config_set_min(config, 0));
    CHECK_OK(herd_config_set_ttl_ms(config, 0));
    CHECK_FAILS(herd_pool_new(config, &pool), HERD_STATUS_INVALID_CONFIG, "ttl");
    CHECK_OK(herd_config_set_ttl_ms(config, 60000));
    CHECK_OK(herd_config_set_health_path(config, "no-slash"));
    CHECK_FAILS(herd_pool_new(config, &pool), HERD_STATUS_INVALID_CONFIG, "no-slash");
    CHECK_OK(herd_config_set_health_path(config, "/health"));
    CHECK_OK(herd_config_set_command(config, "/nonexistent/worker", NULL, 0));
    CHECK_FAILS(herd_pool_new(config, &pool), HERD_STATUS_SPAWN_FAILED, "/nonexistent/worker");
    CHECK(pool == sentinel, "still untouched");
    herd_config_free(config);
    herd_config_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* bad_pool_input: NULL pool, NULL out-pointer, invalid UTF-8, oversized
 * and malformed IDs, zero and oversized timeouts, undersized stats structs:
 * each returns its documented status with a message, and no session is
 * bound by a call that failed. */

static void bad_pool_input(void) {
    herd_config_t *config = demo_config(1, 2);
    herd_pool_t *pool = NULL;
    CHECK_OK(herd_pool_new(config, &pool));
    herd_config_free(config);
    CHECK_OK(herd_pool_wait_ready(pool, 30000));

    herd_lease_t *const sentinel = (herd_lease_t *)&pool;
    herd_lease_t *lease = sentinel;
    CHECK_FAILS(herd_acquire(NULL, "a", 1000, &lease), HERD_STATUS_INVALID_ARGUMENT, "pool is NULL");
    CHECK_FAILS(herd_acquire(pool, NULL, 1000, &lease), HERD_STATUS_INVALID_ARGUMENT, "session_id is NULL");
    CHECK_FAILS(herd_acquire(pool, "a", 1000, NULL), HERD_STATUS_INVALID_ARGUMENT, "lease_out is NULL");
    CHECK_FAILS(herd_acquire(pool, "caf\xc3\x28", 1000, &lease), HERD_STATUS_INVALID_ARGUMENT,
                "session_id is not valid UTF-8");
    char oversized[HERD_MAX_SESSION_ID_LEN + 2];
    memset(oversized, 'x', sizeof oversized - 1);
    oversized[sizeof oversized - 1] = '\0';
    CHECK_FAILS(herd_acquire(pool, oversized, 1000, &lease), HERD_STATUS_INVALID_SESSION_ID, "257 bytes");
    CHECK_FAILS(herd_acquire(pool, "", 1000, &lease), HERD_STATUS_INVALID_SESSION_ID, "empty");
    CHECK_FAILS(herd_acquire(pool, "tab\there", 1000, &lease), HERD_STATUS_INVALID_SESSION_ID, "control");
    CHECK_FAILS(herd_acquire(pool, "a", HERD_MAX_DURATION_MS + 1, &lease), HERD_STATUS_INVALID_ARGUMENT,
                "timeout_ms");
    CHECK(lease == sentinel, "failed acquires leave lease_out alone");
    herd_stats_t stats = pool_stats(pool);
    CHECK(stats.sessions == 0 && stats.sessions_bound == 0, "no failed call bound a session (%llu)",
          (unsigned long long)stats.sessions_bound);

    /* Zero timeout: served at once by the idle worker, else refused at once. */
    CHECK_OK(herd_acquire(pool, "first", 0, &lease));
    herd_lease_t *second = NULL;
    CHECK_FAILS(herd_acquire(pool, "second", 0, &second), HERD_STATUS_ACQUIRE_TIMEOUT, "timeout_ms = 0");
    CHECK(second == NULL, "untouched");
    /* The longest ID is fine. */
    oversized[HERD_MAX_SESSION_ID_LEN] = '\0';
    herd_lease_t *longest = NULL;
    CHECK_OK(herd_acquire(pool, oversized, 30000, &longest));
    CHECK(strcmp(herd_lease_session_id(longest), oversized) == 0, "the ID round-trips");
    herd_release(longest);
    herd_release(lease);

    bool was_bound = false;
    CHECK_FAILS(herd_end_session(NULL, "a", &was_bound), HERD_STATUS_INVALID_ARGUMENT, "pool is NULL");
    CHECK_FAILS(herd_end_session(pool, NULL, &was_bound), HERD_STATUS_INVALID_ARGUMENT, "session_id is NULL");
    CHECK_FAILS(herd_end_session(pool, "", &was_bound), HERD_STATUS_INVALID_SESSION_ID, "empty");
    CHECK_OK(herd_end_session(pool, "first", NULL));

    herd_stats_t small;
    memset(&small, 0, sizeof small);
    small.size = 16;
    CHECK_FAILS(herd_stats(NULL, &small), HERD_STATUS_INVALID_ARGUMENT, "pool is NULL");
    CHECK_FAILS(herd_stats(pool, NULL), HERD_STATUS_INVALID_ARGUMENT, "stats_out is NULL");
    CHECK_FAILS(herd_stats(pool, &small), HERD_STATUS_INVALID_ARGUMENT, "sizeof(herd_stats_t)");
    CHECK(small.size == 16 && small.workers_total == 0, "a failed herd_stats writes nothing");

    herd_worker_stats_t rows[4];
    size_t count = 0;
    CHECK_FAILS(herd_stats_workers(pool, NULL, sizeof rows[0], 4, &count), HERD_STATUS_INVALID_ARGUMENT,
                "rows is NULL");
    CHECK_FAILS(herd_stats_workers(pool, rows, 8, 4, &count), HERD_STATUS_INVALID_ARGUMENT, "row_size");
    CHECK_FAILS(herd_stats_workers(pool, rows, sizeof rows[0], 4, NULL), HERD_STATUS_INVALID_ARGUMENT,
                "count_out is NULL");
    CHECK_OK(herd_stats_workers(pool, NULL, 0, 0, &count));
    CHECK(count >= 1, "counting needs no rows: %zu", count);

    CHECK_FAILS(herd_pool_wait_ready(NULL, 10), HERD_STATUS_INVALID_ARGUMENT, "pool is NULL");
    CHECK_FAILS(herd_pool_shutdown(NULL, 10), HERD_STATUS_INVALID_ARGUMENT, "pool is NULL");

    /* Getters on NULL return their "none" value; destructors accept NULL. */
    CHECK(herd_lease_url(NULL) == NULL && herd_lease_session_id(NULL) == NULL, "NULL getters");
    CHECK(herd_lease_pid(NULL) == 0 && herd_lease_port(NULL) == 0 && herd_lease_worker_id(NULL) == 0, "zeros");
    CHECK(herd_lease_is_ended(NULL), "a NULL lease counts as ended");
    herd_lease_touch(NULL);
    herd_release(NULL);
    herd_pool_free(NULL);
    herd_pool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* affinity_and_isolation: the same ID reaches the same worker process (and
 * its state); different IDs reach different processes that share nothing;
 * herd_pool_free leaves no worker process behind. */

static void affinity_and_isolation(void) {
    herd_config_t *config = demo_config(2, 4);
    herd_pool_t *pool = NULL;
    CHECK_OK(herd_pool_new(config, &pool));
    herd_config_free(config);

    herd_lease_t *alice = NULL, *bob = NULL;
    CHECK_OK(herd_acquire(pool, "alice", 30000, &alice));
    CHECK_OK(herd_acquire(pool, "bob", 30000, &bob));
    uint32_t alice_pid = herd_lease_pid(alice), bob_pid = herd_lease_pid(bob);
    CHECK(alice_pid != 0 && bob_pid != 0 && alice_pid != bob_pid, "pids %u and %u", alice_pid, bob_pid);
    CHECK(herd_lease_worker_id(alice) != herd_lease_worker_id(bob), "different workers");
    CHECK(strcmp(herd_lease_session_id(alice), "alice") == 0, "session id %s", herd_lease_session_id(alice));
    char want_url[64];
    snprintf(want_url, sizeof want_url, "http://127.0.0.1:%u", herd_lease_port(alice));
    CHECK(strcmp(herd_lease_url(alice), want_url) == 0, "url %s", herd_lease_url(alice));

    /* The worker process answering on the lease's port is the lease's PID. */
    CHECK(worker_reported_pid(herd_lease_port(alice), "alice") == alice_pid, "alice's worker");
    CHECK(worker_reported_pid(herd_lease_port(bob), "bob") == bob_pid, "bob's worker");

    char body[256];
    int status = 0;
    CHECK(http_request(herd_lease_port(alice), "PUT", "/kv/color", "alice", "red", &status, body, sizeof body) == 0,
          "%s", body);
    CHECK(status == 200 || status == 201 || status == 204, "PUT answered %d: %s", status, body);
    CHECK(http_request(herd_lease_port(bob), "GET", "/kv/color", "bob", NULL, &status, body, sizeof body) == 0,
          "%s", body);
    CHECK(status == 404, "bob must not see alice's state: %d %s", status, body);
    herd_release(alice);
    herd_release(bob);

    herd_lease_t *again = NULL;
    CHECK_OK(herd_acquire(pool, "alice", 30000, &again));
    CHECK(herd_lease_pid(again) == alice_pid, "alice comes back to pid %u, got %u", alice_pid,
          herd_lease_pid(again));
    CHECK(http_request(herd_lease_port(again), "GET", "/kv/color", "alice", NULL, &status, body, sizeof body) == 0,
          "%s", body);
    CHECK(status == 200 && strstr(body, "red") != NULL, "alice's state is still there: %d %s", status, body);
    herd_release(again);

    herd_pool_free(pool);
    CHECK(!process_exists(alice_pid) && !process_exists(bob_pid), "workers %u/%u outlived herd_pool_free",
          alice_pid, bob_pid);
}

/* ------------------------------------------------------------------------ */
/* sixteen_threads_overlapping_ids: 16 pthreads acquire and release 8
 * overlapping session IDs at once. Invariants: one PID per session ID, one
 * session ID per worker PID, and exactly one binding per ID (singleflight). */

#define THREADS 16
#define SESSIONS 8
#define ROUNDS 30

struct shared_map {
    herd_pool_t *pool;
    pthread_mutex_t mu;
    uint32_t pid_of_session[SESSIONS];
    uint32_t pids[SESSIONS * 2];
    int session_of_pid[SESSIONS * 2];
    int npids;
    char error[512];
};

static void record_error(struct shared_map *m, const char *what) {
    pthread_mutex_lock(&m->mu);
    if (m->error[0] == '\0') snprintf(m->error, sizeof m->error, "%s", what);
    pthread_mutex_unlock(&m->mu);
}

struct worker_arg {
    struct shared_map *map;
    int thread;
};

static void *acquire_loop(void *p) {
    struct worker_arg *arg = p;
    struct shared_map *m = arg->map;
    char id[32], msg[512];
    for (int round = 0; round < ROUNDS; round++) {
        int s = (arg->thread * 5 + round * 3) % SESSIONS;
        snprintf(id, sizeof id, "user-%d", s);
        herd_lease_t *lease = NULL;
        herd_status_t st = herd_acquire(m->pool, id, 60000, &lease);
        if (st != HERD_STATUS_OK) {
            snprintf(msg, sizeof msg, "acquire %s: %s: %s", id, herd_status_str(st), herd_last_error_message());
            record_error(m, msg);
            return NULL;
        }
        uint32_t pid = herd_lease_pid(lease);
        pthread_mutex_lock(&m->mu);
        if (m->pid_of_session[s] == 0) m->pid_of_session[s] = pid;
        int ok = m->pid_of_session[s] == pid, known = 0;
        for (int i = 0; i < m->npids; i++) {
            if (m->pids[i] == pid) {
                known = 1;
                ok = ok && m->session_of_pid[i] == s;
            }
        }
        if (!known && m->npids < SESSIONS * 2) {
            m->pids[m->npids] = pid;
            m->session_of_pid[m->npids++] = s;
        }
        pthread_mutex_unlock(&m->mu);
        if (!ok) {
            snprintf(msg, sizeof msg, "%s got pid %u, which breaks one-session-one-worker", id, pid);
            record_error(m, msg);
        }
        if (round % 10 == 0 && worker_reported_pid(herd_lease_port(lease), id) != pid) {
            snprintf(msg, sizeof msg, "the worker on %s's port is not pid %u", id, pid);
            record_error(m, msg);
        }
        herd_release(lease);
    }
    return NULL;
}

static void sixteen_threads_overlapping_ids(void) {
    herd_config_t *config = demo_config(1, SESSIONS);
    struct shared_map map;
    memset(&map, 0, sizeof map);
    pthread_mutex_init(&map.mu, NULL);
    CHECK_OK(herd_pool_new(config, &map.pool));
    herd_config_free(config);

    pthread_t threads[THREADS];
    struct worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t].map = &map;
        args[t].thread = t;
        CHECK(pthread_create(&threads[t], NULL, acquire_loop, &args[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    CHECK(map.error[0] == '\0', "%s", map.error);
    CHECK(map.npids == SESSIONS, "%d distinct pids for %d sessions", map.npids, SESSIONS);

    herd_stats_t stats = pool_stats(map.pool);
    CHECK(stats.sessions == SESSIONS && stats.workers_bound == SESSIONS, "sessions %llu, bound %llu",
          (unsigned long long)stats.sessions, (unsigned long long)stats.workers_bound);
    CHECK(stats.sessions_bound == SESSIONS, "exactly one binding per ID, got %llu bindings",
          (unsigned long long)stats.sessions_bound);
    CHECK(stats.open_leases == 0 && stats.acquire_timeouts == 0, "leases %llu, timeouts %llu",
          (unsigned long long)stats.open_leases, (unsigned long long)stats.acquire_timeouts);
    herd_pool_free(map.pool);
    pthread_mutex_destroy(&map.mu);
}

/* ------------------------------------------------------------------------ */
/* timeouts_and_queue: with every worker bound a new session waits up to
 * its timeout and fails with ACQUIRE_TIMEOUT; a waiter gets the worker as
 * soon as a session ends; with a full queue the acquire is refused at once. */

struct waiter {
    herd_pool_t *pool;
    herd_status_t status;
    uint32_t pid;
    char message[512];
};

static void *wait_for_worker(void *p) {
    struct waiter *w = p;
    herd_lease_t *lease = NULL;
    w->status = herd_acquire(w->pool, "waiter", 60000, &lease);
    snprintf(w->message, sizeof w->message, "%s", herd_last_error_message());
    w->pid = herd_lease_pid(lease);
    herd_release(lease);
    return NULL;
}

static void timeouts_and_queue(void) {
    herd_config_t *config = demo_config(1, 1);
    herd_pool_t *pool = NULL;
    CHECK_OK(herd_pool_new(config, &pool));
    herd_lease_t *holder = NULL, *late = NULL;
    CHECK_OK(herd_acquire(pool, "holder", 30000, &holder));
    uint32_t holder_pid = herd_lease_pid(holder);

    uint64_t started = now_ms();
    CHECK_FAILS(herd_acquire(pool, "late", 300, &late), HERD_STATUS_ACQUIRE_TIMEOUT, "within 300ms");
    CHECK(now_ms() - started >= 300, "it waited for the timeout");
    CHECK(late == NULL, "untouched");
    herd_stats_t stats = pool_stats(pool);
    CHECK(stats.acquire_timeouts == 1 && stats.waiting_acquires == 0 && stats.queued_sessions == 0,
          "timeouts %llu, waiting %llu", (unsigned long long)stats.acquire_timeouts,
          (unsigned long long)stats.waiting_acquires);

    struct waiter w = {pool, HERD_STATUS_INTERNAL, 0, ""};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, wait_for_worker, &w) == 0, "pthread_create");
    int waiting = 0;
    WAIT_UNTIL(waiting, pool_stats(pool).waiting_acquires == 1, 20000);
    CHECK(waiting, "the waiter queued");
    herd_release(holder);
    bool was_bound = false;
    CHECK_OK(herd_end_session(pool, "holder", &was_bound));
    CHECK(was_bound, "holder was bound");
    pthread_join(thread, NULL);
    CHECK(w.status == HERD_STATUS_OK, "waiter: %s: %s", herd_status_str(w.status), w.message);
    CHECK(w.pid == holder_pid, "the freed worker (pid %u) went to the waiter (pid %u)", holder_pid, w.pid);
    herd_pool_free(pool);

    /* A queue of 0: refused at once with POOL_EXHAUSTED. */
    CHECK_OK(herd_config_set_max_queue(config, 0));
    CHECK_OK(herd_pool_new(config, &pool));
    herd_config_free(config);
    CHECK_OK(herd_acquire(pool, "holder", 30000, &holder));
    started = now_ms();
    CHECK_FAILS(herd_acquire(pool, "other", 30000, &late), HERD_STATUS_POOL_EXHAUSTED, "max_queue = 0");
    CHECK(pool_stats(pool).acquires_rejected == 1, "counted as rejected");
    herd_release(holder);
    herd_pool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* callbacks_after_kill9: after `kill -9` of a bound worker the session-end
 * callback fires on herd's thread with the right ID, reason CRASHED and
 * signal 9; the callback can call back into herd (stats, a blocking
 * acquire) without deadlock; the session gets a fresh worker; shutdown
 * ends arrive before herd_pool_free returns, and the userdata finalizer
 * runs exactly once. */

#define MAX_ENDS 32

struct end_record {
    char session[HERD_SESSION_ID_BUF_LEN];
    herd_end_reason_t reason;
    int exit_code, signal;
    uint32_t pid;
};

struct end_log {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    struct end_record ends[MAX_ENDS];
    int count;
    herd_pool_t *pool;
    pthread_t main_thread;
    int on_main_thread;
    herd_status_t reentrant_stats, reentrant_acquire;
    int reentered;
    int finalized;
};

static void on_session_end(void *userdata, const herd_session_end_t *end) {
    struct end_log *log = userdata;
    int reenter = 0;
    pthread_mutex_lock(&log->mu);
    if (pthread_equal(pthread_self(), log->main_thread)) log->on_main_thread = 1;
    if (log->count < MAX_ENDS) {
        struct end_record *r = &log->ends[log->count++];
        snprintf(r->session, sizeof r->session, "%s", end->session_id);
        r->reason = end->reason;
        r->exit_code = end->exit_code;
        r->signal = end->signal;
        r->pid = end->pid;
    }
    reenter = end->reason == HERD_END_CRASHED && !log->reentered;
    pthread_mutex_unlock(&log->mu);
    if (reenter) {
        /* Back into herd from its own event thread. */
        herd_stats_t stats;
        memset(&stats, 0, sizeof stats);
        stats.size = sizeof stats;
        herd_status_t st = herd_stats(log->pool, &stats);
        herd_lease_t *lease = NULL;
        herd_status_t acq = herd_acquire(log->pool, "from-callback", 60000, &lease);
        herd_release(lease);
        pthread_mutex_lock(&log->mu);
        log->reentrant_stats = st;
        log->reentrant_acquire = acq;
        log->reentered = 1;
        pthread_mutex_unlock(&log->mu);
    }
    pthread_mutex_lock(&log->mu);
    pthread_cond_broadcast(&log->changed);
    pthread_mutex_unlock(&log->mu);
}

static void free_end_log(void *userdata) {
    struct end_log *log = userdata;
    log->finalized++;
}

static int log_reentered(struct end_log *log) {
    pthread_mutex_lock(&log->mu);
    int done = log->reentered;
    pthread_mutex_unlock(&log->mu);
    return done;
}

/* Index of the first end of `session` with `reason`, waiting up to 30 s. */
static int wait_for_end(struct end_log *log, const char *session, herd_end_reason_t reason) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    int found = -1;
    pthread_mutex_lock(&log->mu);
    while (found < 0) {
        for (int i = 0; i < log->count && found < 0; i++)
            if (strcmp(log->ends[i].session, session) == 0 && log->ends[i].reason == reason) found = i;
        if (found < 0 && pthread_cond_timedwait(&log->changed, &log->mu, &deadline) != 0) break;
    }
    pthread_mutex_unlock(&log->mu);
    return found;
}

static void callbacks_after_kill9(void) {
    static struct end_log log;
    memset(&log, 0, sizeof log);
    pthread_mutex_init(&log.mu, NULL);
    pthread_cond_init(&log.changed, NULL);
    log.main_thread = pthread_self();

    herd_config_t *config = demo_config(1, 3);
    CHECK_OK(herd_config_on_session_end(config, on_session_end, &log, free_end_log));
    CHECK_OK(herd_pool_new(config, &log.pool));
    herd_config_free(config);
    CHECK(log.finalized == 0, "the pool still needs the userdata");

    herd_lease_t *lease = NULL;
    CHECK_OK(herd_acquire(log.pool, "victim", 30000, &lease));
    uint32_t pid = herd_lease_pid(lease);
    herd_release(lease);
    CHECK(kill((pid_t)pid, SIGKILL) == 0, "kill -9 %u", pid);

    int i = wait_for_end(&log, "victim", HERD_END_CRASHED);
    CHECK(i >= 0, "no CRASHED end for victim within 30 s (%d ends seen)", log.count);
    pthread_mutex_lock(&log.mu);
    struct end_record end = log.ends[i];
    pthread_mutex_unlock(&log.mu);
    CHECK(end.pid == pid && end.signal == SIGKILL && end.exit_code == -1, "pid %u signal %d code %d", end.pid,
          end.signal, end.exit_code);

    int reentered = 0;
    WAIT_UNTIL(reentered, log_reentered(&log), 60000);
    CHECK(reentered, "the callback's calls into herd never returned");
    CHECK(log.reentrant_stats == HERD_STATUS_OK && log.reentrant_acquire == HERD_STATUS_OK,
          "from the callback: stats %s, acquire %s", herd_status_str(log.reentrant_stats),
          herd_status_str(log.reentrant_acquire));

    /* The crashed session is not stuck on its dead worker. */
    CHECK_OK(herd_acquire(log.pool, "victim", 30000, &lease));
    CHECK(herd_lease_pid(lease) != pid && process_exists(herd_lease_pid(lease)), "fresh worker %u",
          herd_lease_pid(lease));
    herd_release(lease);

    bool was_bound = false;
    CHECK_OK(herd_end_session(log.pool, "victim", &was_bound));
    CHECK(was_bound, "victim was bound again");
    CHECK(wait_for_end(&log, "victim", HERD_END_ENDED) >= 0, "ENDED callback");

    herd_stats_t stats = pool_stats(log.pool);
    CHECK(stats.crashed == 1 && stats.ends_crashed == 1 && stats.ends_ended == 1, "crashed %llu/%llu ended %llu",
          (unsigned long long)stats.crashed, (unsigned long long)stats.ends_crashed,
          (unsigned long long)stats.ends_ended);

    herd_pool_free(log.pool);
    /* "from-callback" was still bound: its shutdown end came before the return. */
    int shutdown_end = -1;
    for (int k = 0; k < log.count; k++)
        if (strcmp(log.ends[k].session, "from-callback") == 0 && log.ends[k].reason == HERD_END_SHUTDOWN)
            shutdown_end = k;
    CHECK(shutdown_end >= 0, "the shutdown end was delivered before herd_pool_free returned");
    CHECK(log.finalized == 1, "finalizer ran %d times", log.finalized);
    CHECK(!log.on_main_thread, "callbacks run on herd's thread, not the caller's");
    pthread_cond_destroy(&log.changed);
    pthread_mutex_destroy(&log.mu);
}

/* ------------------------------------------------------------------------ */
/* pool_freed_from_its_own_callback: herd_pool_free called inside the
 * pool's own session-end callback returns (no deadlock on the event thread
 * it would otherwise wait for), stops the workers, and runs the finalizer. */

struct self_free {
    pthread_mutex_t mu;
    pthread_cond_t done;
    herd_pool_t *pool;
    int freed, finalized;
};

static void free_pool_on_end(void *userdata, const herd_session_end_t *end) {
    struct self_free *sf = userdata;
    if (end->reason != HERD_END_ENDED) return;
    herd_pool_free(sf->pool);
    pthread_mutex_lock(&sf->mu);
    sf->freed = 1;
    pthread_cond_broadcast(&sf->done);
    pthread_mutex_unlock(&sf->mu);
}

static void count_finalized(void *userdata) {
    struct self_free *sf = userdata;
    pthread_mutex_lock(&sf->mu);
    sf->finalized++;
    pthread_cond_broadcast(&sf->done);
    pthread_mutex_unlock(&sf->mu);
}

static void pool_freed_from_its_own_callback(void) {
    static struct self_free sf;
    memset(&sf, 0, sizeof sf);
    pthread_mutex_init(&sf.mu, NULL);
    pthread_cond_init(&sf.done, NULL);
    herd_config_t *config = demo_config(1, 1);
    CHECK_OK(herd_config_on_session_end(config, free_pool_on_end, &sf, count_finalized));
    CHECK_OK(herd_pool_new(config, &sf.pool));
    herd_config_free(config);
    herd_lease_t *lease = NULL;
    CHECK_OK(herd_acquire(sf.pool, "bye", 30000, &lease));
    uint32_t pid = herd_lease_pid(lease);
    herd_release(lease);
    CHECK_OK(herd_end_session(sf.pool, "bye", NULL)); /* the last use of the pool from here */

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&sf.mu);
    while (!(sf.freed && sf.finalized) && pthread_cond_timedwait(&sf.done, &sf.mu, &deadline) == 0) {
    }
    int freed = sf.freed, finalized = sf.finalized;
    pthread_mutex_unlock(&sf.mu);
    CHECK(freed, "herd_pool_free never returned inside the callback");
    CHECK(finalized == 1, "finalizer ran %d times", finalized);
    CHECK(!process_exists(pid), "worker %u outlived its pool", pid);
}

/* ------------------------------------------------------------------------ */
/* stats_match: herd_stats and herd_stats_workers agree with what the test
 * did: sessions, leases, bindings, ends by reason, per-worker rows. */

/* Whether every bound worker has memory and CPU figures from the sampler. */
static int bound_rows_sampled(const herd_pool_t *pool) {
    herd_worker_stats_t rows[8];
    size_t count = 0;
    if (herd_stats_workers(pool, rows, sizeof rows[0], 8, &count) != HERD_STATUS_OK) return 0;
    int bound = 0;
    for (size_t i = 0; i < count && i < 8; i++) {
        if (rows[i].state != HERD_WORKER_BOUND) continue;
        if (rows[i].rss_bytes == 0) return 0;
        bound++;
    }
    return bound > 0;
}

static void stats_match(void) {
    herd_config_t *config = demo_config(1, 3);
    CHECK_OK(herd_config_set_stats_interval_ms(config, 100));
    herd_pool_t *pool = NULL;
    CHECK_OK(herd_pool_new(config, &pool));
    herd_config_free(config);

    herd_lease_t *x1 = NULL, *x2 = NULL, *y = NULL;
    CHECK_OK(herd_acquire(pool, "x", 30000, &x1));
    CHECK_OK(herd_acquire(pool, "x", 30000, &x2));
    CHECK_OK(herd_acquire(pool, "y", 30000, &y));
    herd_stats_t s = pool_stats(pool);
    CHECK(s.size == sizeof s, "size %zu", s.size);
    CHECK(s.sessions == 2 && s.workers_bound == 2 && s.open_leases == 3 && s.sessions_bound == 2,
          "sessions %llu bound %llu leases %llu", (unsigned long long)s.sessions,
          (unsigned long long)s.workers_bound, (unsigned long long)s.open_leases);
    CHECK(s.min == 1 && s.max == 3 && s.min_idle == 0 && s.max_queue == 1024 && !s.closed, "config figures");
    CHECK(s.workers_total == s.workers_starting + s.workers_idle + s.workers_bound + s.workers_draining +
                                 s.workers_stopping,
          "states add up to %llu", (unsigned long long)s.workers_total);

    herd_worker_stats_t rows[8];
    size_t count = 0;
    CHECK_OK(herd_stats_workers(pool, rows, sizeof rows[0], 8, &count));
    CHECK(count == s.workers_total, "%zu rows for %llu workers", count, (unsigned long long)s.workers_total);
    int seen_x = 0, seen_y = 0;
    for (size_t i = 0; i < count; i++) {
        if (rows[i].state != HERD_WORKER_BOUND) continue;
        herd_lease_t *lease = strcmp(rows[i].session_id, "x") == 0 ? x1 : y;
        seen_x += strcmp(rows[i].session_id, "x") == 0;
        seen_y += strcmp(rows[i].session_id, "y") == 0;
        CHECK(rows[i].pid == herd_lease_pid(lease) && rows[i].port == herd_lease_port(lease) &&
                  rows[i].worker_id == herd_lease_worker_id(lease),
              "row for %s: pid %u port %u", rows[i].session_id, rows[i].pid, rows[i].port);
    }
    CHECK(seen_x == 1 && seen_y == 1, "one bound row per session (%d, %d)", seen_x, seen_y);
    /* Fewer rows than workers: the count still says how many there are. */
    CHECK_OK(herd_stats_workers(pool, rows, sizeof rows[0], 1, &count));
    CHECK(count == s.workers_total, "count %zu", count);

    int sampled = 0;
    WAIT_UNTIL(sampled, bound_rows_sampled(pool) && pool_stats(pool).host_sampled_at_ms > 0, 10000);
    CHECK(sampled, "the background sampler filled rss and host figures");

    herd_release(x1);
    herd_release(x2);
    herd_release(y);
    bool was_bound = false;
    CHECK_OK(herd_end_session(pool, "x", &was_bound));
    CHECK(was_bound, "x was bound");
    CHECK_OK(herd_end_session(pool, "x", &was_bound));
    CHECK(!was_bound, "x is no longer bound");
    s = pool_stats(pool);
    CHECK(s.ends_ended == 1 && s.sessions == 1 && s.open_leases == 0, "ended %llu sessions %llu",
          (unsigned long long)s.ends_ended, (unsigned long long)s.sessions);

    CHECK_OK(herd_pool_shutdown(pool, 2000));
    s = pool_stats(pool);
    CHECK(s.closed && s.ends_shutdown == 1 && s.workers_total == 0 && s.sessions == 0,
          "closed %d shutdown-ends %llu workers %llu", s.closed, (unsigned long long)s.ends_shutdown,
          (unsigned long long)s.workers_total);
    herd_lease_t *late = NULL;
    CHECK_FAILS(herd_acquire(pool, "z", 1000, &late), HERD_STATUS_POOL_CLOSED, "shut down");
    CHECK_OK(herd_pool_shutdown(pool, 2000));
    herd_pool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* fork_child_gets_forked: a child forked after the pool was created gets
 * HERD_STATUS_FORKED from every call, never a hang, can release and free
 * its copies of the handles, and can make a pool of its own; the parent's
 * pool is unaffected. */

static void fork_child_gets_forked(void) {
    herd_config_t *config = demo_config(1, 2);
    herd_pool_t *pool = NULL;
    CHECK_OK(herd_pool_new(config, &pool));
    herd_config_free(config);
    herd_lease_t *lease = NULL;
    CHECK_OK(herd_acquire(pool, "parent", 30000, &lease));
    uint32_t pid = herd_lease_pid(lease);
    herd_release(lease);
    herd_lease_t *held = NULL; /* open across the fork */
    CHECK_OK(herd_acquire(pool, "held", 30000, &held));

    int pipefd[2];
    CHECK(pipe(pipefd) == 0, "pipe");
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        alarm(60); /* a hang becomes SIGALRM, which the parent sees */
        close(pipefd[0]);
        char report[1024];
        herd_lease_t *l = NULL;
        herd_stats_t st;
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        size_t count = 0;
        herd_status_t got[6] = {
            herd_acquire(pool, "parent", 1000, &l),     herd_acquire(pool, "new", 1000, &l),
            herd_stats(pool, &st),                       herd_stats_workers(pool, NULL, 0, 0, &count),
            herd_end_session(pool, "parent", NULL),      herd_pool_wait_ready(pool, 1000),
        };
        int forked = 1;
        for (int i = 0; i < 6; i++) forked = forked && got[i] == HERD_STATUS_FORKED;
        herd_status_t shut = herd_pool_shutdown(pool, 1000);
        int n = snprintf(report, sizeof report, "%s %s %d %s", forked ? "forked" : "not-forked",
                         herd_status_str(shut), l == NULL, herd_last_error_message());
        herd_release(held);   /* the child's copy only */
        herd_pool_free(pool); /* the child's copy only */
        /* The child can make a pool of its own, with its own workers. */
        herd_config_t *own_config = demo_config(1, 1);
        herd_pool_t *own = NULL;
        herd_lease_t *own_lease = NULL;
        herd_status_t own_status = herd_pool_new(own_config, &own);
        herd_config_free(own_config);
        if (own_status == HERD_STATUS_OK) own_status = herd_acquire(own, "child", 30000, &own_lease);
        uint32_t own_pid = herd_lease_pid(own_lease);
        herd_release(own_lease);
        herd_pool_free(own);
        n += snprintf(report + n, sizeof report - (size_t)n, "|own pool: %s, worker %s", herd_status_str(own_status),
                      own_pid != 0 && own_pid != pid && !process_exists(own_pid) ? "separate and gone" : "wrong");
        if (write(pipefd[1], report, (size_t)n) != n) _exit(3);
        _exit(0);
    }
    close(pipefd[1]);
    char report[1024];
    ssize_t n = read(pipefd[0], report, sizeof report - 1);
    close(pipefd[0]);
    int wstatus = 0;
    waitpid(child, &wstatus, 0);
    CHECK(WIFEXITED(wstatus), "the child hung or crashed (wait status %#x)", wstatus);
    CHECK(n > 0, "no report from the child");
    report[n] = '\0';
    CHECK(strncmp(report, "forked forked 1 herd_pool_shutdown: ", 36) == 0 && strstr(report, "fork()") != NULL,
          "child saw: %s", report);
    CHECK(strstr(report, "|own pool: ok, worker separate and gone") != NULL, "child saw: %s", report);

    CHECK_OK(herd_acquire(pool, "parent", 30000, &lease));
    CHECK(herd_lease_pid(lease) == pid && process_exists(pid), "the parent's worker is untouched");
    CHECK(pool_stats(pool).open_leases == 2, "the parent's leases are still open");
    herd_release(lease);
    herd_release(held);
    herd_pool_free(pool);
    CHECK(!process_exists(pid), "freed in the parent: worker gone");
}

/* ------------------------------------------------------------------------ */
/* sandbox_settings_reach_the_worker: bad sandbox settings are refused with
 * a message naming them; with the sandbox required and a pids limit, a fork
 * bomb in the worker stops below the limit (skipped, saying so, on a host
 * without a cgroup pids controller); with the sandbox off workers run. */

static void sandbox_settings_reach_the_worker(void) {
    herd_config_t *config = demo_config(0, 1);
    herd_pool_t *pool = NULL;
    CHECK_FAILS(herd_config_set_sandbox(config, 7), HERD_STATUS_INVALID_ARGUMENT, "herd_sandbox_mode_t");
    CHECK_FAILS(herd_config_set_sandbox(NULL, HERD_SANDBOX_OFF), HERD_STATUS_INVALID_ARGUMENT, "config is NULL");
    CHECK_OK(herd_config_set_memory_limit(config, 1000));
    CHECK_FAILS(herd_pool_new(config, &pool), HERD_STATUS_INVALID_CONFIG, "memory_limit");
    CHECK_OK(herd_config_set_memory_limit(config, 0));
    CHECK_OK(herd_config_set_cpu_limit(config, -1.0));
    CHECK_FAILS(herd_pool_new(config, &pool), HERD_STATUS_INVALID_CONFIG, "cpu_limit");
    CHECK_OK(herd_config_set_cpu_limit(config, 0));
    CHECK_OK(herd_config_set_cgroup_root(config, "relative"));
    CHECK_FAILS(herd_pool_new(config, &pool), HERD_STATUS_INVALID_CONFIG, "cgroup_root");
    CHECK_FAILS(herd_config_set_cgroup_root(config, NULL), HERD_STATUS_INVALID_ARGUMENT, "path is NULL");
    herd_config_free(config);

    config = demo_config(0, 1);
    CHECK_OK(herd_config_set_sandbox(config, HERD_SANDBOX_REQUIRED));
    CHECK_OK(herd_config_set_pids_limit(config, 16));
    herd_status_t st = herd_pool_new(config, &pool);
    herd_config_free(config);
    if (st == HERD_STATUS_SANDBOX) {
        printf("    skipped the pids limit: this host cannot sandbox (%s)\n", herd_last_error_message());
    } else {
        CHECK_OK(st);
        herd_lease_t *lease = NULL;
        CHECK_OK(herd_acquire(pool, "bomber", 30000, &lease));
        char body[256];
        int status = 0;
        CHECK(http_request(herd_lease_port(lease), "GET", "/forkbomb", "bomber", NULL, &status, body,
                           sizeof body) == 0 && status == 200,
              "forkbomb: %d %s", status, body);
        const char *n = strstr(body, "\"forked\":");
        long forked = n ? strtol(n + 9, NULL, 10) : -1;
        CHECK(forked > 0 && forked < 16, "forked %ld processes under a limit of 16: %s", forked, body);
        herd_release(lease);
        herd_pool_free(pool);
    }

    config = demo_config(1, 1);
    CHECK_OK(herd_config_set_sandbox(config, HERD_SANDBOX_OFF));
    CHECK_OK(herd_config_set_namespaces(config, false));
    CHECK_OK(herd_pool_new(config, &pool));
    herd_config_free(config);
    herd_lease_t *lease = NULL;
    CHECK_OK(herd_acquire(pool, "plain", 30000, &lease));
    CHECK(worker_reported_pid(herd_lease_port(lease), "plain") == herd_lease_pid(lease), "unsandboxed worker");
    herd_release(lease);
    herd_pool_free(pool);
}

/* ------------------------------------------------------------------------ */
/* proxy_gateway: herd_proxy_start serves each session's requests from that
 * session's worker (the same one herd_acquire gives), answers 400 without
 * a session ID, serves the admin routes, refuses a taken address and bad
 * options with their statuses, and after herd_proxy_stop every call but
 * herd_proxy_free returns HERD_STATUS_PROXY_STOPPED and the port is closed. */

static uint16_t port_of(const char *address) {
    const char *colon = strrchr(address, ':');
    return colon ? (uint16_t)atoi(colon + 1) : 0;
}

static void proxy_gateway(void) {
    herd_config_t *config = demo_config(1, 3);
    herd_pool_t *pool = NULL;
    CHECK_OK(herd_pool_new(config, &pool));
    herd_config_free(config);

    herd_proxy_config_t *gateway = NULL;
    herd_proxy_t *proxy = NULL, *second = NULL;
    CHECK_OK(herd_proxy_config_new(&gateway));
    CHECK_FAILS(herd_proxy_config_set_listen(gateway, "localhost"), HERD_STATUS_INVALID_ARGUMENT, "localhost");
    CHECK_FAILS(herd_proxy_config_set_listen(NULL, "127.0.0.1:0"), HERD_STATUS_INVALID_ARGUMENT, "config is NULL");
    CHECK_OK(herd_proxy_config_set_listen(gateway, "127.0.0.1:0"));
    CHECK_OK(herd_proxy_config_set_admin_listen(gateway, "127.0.0.1:0"));
    CHECK_FAILS(herd_proxy_start(NULL, gateway, &proxy), HERD_STATUS_INVALID_ARGUMENT, "pool is NULL");
    CHECK_FAILS(herd_proxy_start(pool, NULL, &proxy), HERD_STATUS_INVALID_ARGUMENT, "config is NULL");
    CHECK_FAILS(herd_proxy_start(pool, gateway, NULL), HERD_STATUS_INVALID_ARGUMENT, "proxy_out is NULL");
    CHECK_OK(herd_proxy_start(pool, gateway, &proxy));

    const char *address = NULL, *admin = NULL;
    CHECK_OK(herd_proxy_address(proxy, &address));
    CHECK_OK(herd_proxy_admin_address(proxy, &admin));
    CHECK(strncmp(address, "127.0.0.1:", 10) == 0 && port_of(address) != 0, "address %s", address);
    CHECK(admin != NULL && port_of(admin) != 0 && port_of(admin) != port_of(address), "admin %s", admin);

    /* The gateway and herd_acquire agree on each session's worker. */
    uint32_t via_proxy = worker_reported_pid(port_of(address), "alice");
    herd_lease_t *lease = NULL;
    CHECK_OK(herd_acquire(pool, "alice", 30000, &lease));
    CHECK(via_proxy != 0 && via_proxy == herd_lease_pid(lease), "proxy reached %u, alice is on %u", via_proxy,
          herd_lease_pid(lease));
    herd_release(lease);
    uint32_t bob = worker_reported_pid(port_of(address), "bob");
    CHECK(bob != 0 && bob != via_proxy, "bob %u has his own worker", bob);
    CHECK(worker_reported_pid(port_of(address), "alice") == via_proxy, "alice again");
    char body[2048];
    int status = 0;
    CHECK(http_request(port_of(address), "GET", "/", NULL, NULL, &status, body, sizeof body) == 0 && status == 400,
          "no session ID: %d %s", status, body);
    CHECK(http_request(port_of(admin), "GET", "/stats", NULL, NULL, &status, body, sizeof body) == 0 &&
              status == 200 && strstr(body, "sessions") != NULL,
          "admin /stats: %d %s", status, body);

    /* An address in use (the admin listener's) is refused. (The gateway's
     * own address is not: its sockets use SO_REUSEPORT, one per thread.) */
    char taken[64];
    snprintf(taken, sizeof taken, "%s", address);
    CHECK_OK(herd_proxy_config_set_listen(gateway, admin));
    CHECK_FAILS(herd_proxy_start(pool, gateway, &second), HERD_STATUS_IO, admin);
    CHECK(second == NULL, "untouched");
    CHECK_OK(herd_proxy_config_set_listen(gateway, "127.0.0.1:0"));
    CHECK_OK(herd_proxy_config_add_session_header(gateway, "bad header"));
    CHECK_FAILS(herd_proxy_start(pool, gateway, &second), HERD_STATUS_INVALID_CONFIG, "bad header");
    herd_proxy_config_free(gateway);

    CHECK_OK(herd_proxy_stop(proxy, 1000));
    const char *after = NULL;
    CHECK_FAILS(herd_proxy_address(proxy, &after), HERD_STATUS_PROXY_STOPPED, "herd_proxy_stop");
    CHECK_FAILS(herd_proxy_admin_address(proxy, &after), HERD_STATUS_PROXY_STOPPED, "herd_proxy_stop");
    CHECK_FAILS(herd_proxy_stop(proxy, 1000), HERD_STATUS_PROXY_STOPPED, "herd_proxy_stop");
    CHECK(after == NULL, "untouched");
    CHECK(http_request(port_of(taken), "GET", "/", "alice", NULL, &status, body, sizeof body) != 0,
          "the stopped gateway still answers: %d", status);
    CHECK_FAILS(herd_proxy_address(NULL, &after), HERD_STATUS_INVALID_ARGUMENT, "proxy is NULL");
    herd_proxy_free(proxy);
    herd_proxy_free(NULL);

    /* The pool outlives its gateway. */
    CHECK_OK(herd_acquire(pool, "alice", 30000, &lease));
    CHECK(herd_lease_pid(lease) == via_proxy, "alice keeps her worker");
    herd_release(lease);
    herd_pool_free(pool);
}

/* ------------------------------------------------------------------------ */

struct test {
    const char *name;
    void (*run)(void);
};

static const struct test tests[] = {
    {"version_and_names", version_and_names},
    {"bad_config_input", bad_config_input},
    {"bad_pool_input", bad_pool_input},
    {"affinity_and_isolation", affinity_and_isolation},
    {"sixteen_threads_overlapping_ids", sixteen_threads_overlapping_ids},
    {"timeouts_and_queue", timeouts_and_queue},
    {"callbacks_after_kill9", callbacks_after_kill9},
    {"pool_freed_from_its_own_callback", pool_freed_from_its_own_callback},
    {"stats_match", stats_match},
    {"fork_child_gets_forked", fork_child_gets_forked},
    {"sandbox_settings_reach_the_worker", sandbox_settings_reach_the_worker},
    {"proxy_gateway", proxy_gateway},
};

int main(int argc, char **argv) {
    int ran = 0, failed_tests = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++) wanted = wanted || strcmp(argv[a], tests[i].name) == 0;
        if (!wanted) continue;
        int before = test_failures;
        uint64_t started = now_ms();
        tests[i].run();
        ran++;
        int failed = test_failures != before;
        failed_tests += failed;
        printf("%s %s (%llu ms)\n", failed ? "FAIL" : "ok  ", tests[i].name,
               (unsigned long long)(now_ms() - started));
        fflush(stdout);
    }
    if (ran == 0) {
        fprintf(stderr, "no test matched\n");
        return 2;
    }
    printf("%d of %d tests passed\n", ran - failed_tests, ran);
    return failed_tests ? 1 : 0;
}
