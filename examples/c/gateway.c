/* The reverse-proxy gateway from C: each request's X-Session-ID header picks
 * its own worker process. Run: gateway target/debug/herd-demo-worker 127.0.0.1:8080
 * then: curl -H 'X-Session-ID: alice' http://127.0.0.1:8080/   (Ctrl-C stops it) */
#define _POSIX_C_SOURCE 200809L
#include <herd.h>
#include <signal.h>
#include <stdio.h>
#define OK(call) ((call) == HERD_STATUS_OK)

int main(int argc, char **argv) {
    sigset_t stop; /* blocked before herd starts threads, so sigwait gets them */
    sigemptyset(&stop), sigaddset(&stop, SIGINT), sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    herd_config_t *config = NULL;
    herd_proxy_config_t *gateway = NULL;
    herd_pool_t *pool = NULL;
    herd_proxy_t *proxy = NULL;
    const char *address = NULL;
    int sig, ok = OK(herd_config_new(&config)) && OK(herd_proxy_config_new(&gateway)) &&
                  OK(herd_config_set_command(config, argc > 1 ? argv[1] : "herd-demo-worker", NULL, 0)) &&
                  OK(herd_proxy_config_set_listen(gateway, argc > 2 ? argv[2] : "127.0.0.1:8080")) &&
                  OK(herd_pool_new(config, &pool)) && OK(herd_proxy_start(pool, gateway, &proxy)) &&
                  OK(herd_proxy_address(proxy, &address));
    if (!ok) fprintf(stderr, "gateway: %s\n", herd_last_error_message());
    herd_config_free(config);
    herd_proxy_config_free(gateway);
    if (!ok) {
        herd_proxy_free(proxy);
        herd_pool_free(pool);
        return 1;
    }
    printf("gateway listening on http://%s\n", address);
    fflush(stdout);
    sigwait(&stop, &sig);
    herd_proxy_stop(proxy, 5000); /* requests in flight finish */
    herd_proxy_free(proxy);
    herd_pool_free(pool); /* every worker process is gone */
    return 0;
}
