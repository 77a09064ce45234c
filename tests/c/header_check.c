/*
 * Compiles include/herd.h as C11 and as C++17 with every warning an error
 * (scripts/test.d/30-c.sh), touching each type so none is only declared.
 */
#include "herd.h"

#include <stddef.h>

static void on_end(void *userdata, const herd_session_end_t *end) {
    (void)userdata;
    (void)end->reason;
}

int main(void) {
    herd_session_end_callback_t callback = on_end;
    herd_userdata_free_t free_userdata = NULL;
    herd_status_t status = HERD_STATUS_OK;
    herd_end_reason_t reason = HERD_END_CRASHED;
    herd_worker_state_t state = HERD_WORKER_BOUND;
    herd_stats_t stats;
    herd_worker_stats_t row;
    herd_config_t *config = NULL;
    herd_pool_t *pool = NULL;
    herd_lease_t *lease = NULL;
    stats.size = sizeof stats;
    row.session_id[HERD_SESSION_ID_BUF_LEN - 1] = '\0';
    (void)callback;
    (void)free_userdata;
    (void)config;
    (void)pool;
    (void)lease;
    (void)row;
    return status == HERD_STATUS_OK && reason == HERD_END_CRASHED && state == HERD_WORKER_BOUND &&
                   HERD_TIMEOUT_DEFAULT > HERD_MAX_DURATION_MS && HERD_MAX_SESSION_ID_LEN == 256 &&
                   sizeof(HERD_VERSION) > 1
               ? 0
               : 1;
}
