/* What this machine gives a thread that does nothing but keep a schedule.
 *
 * The platform ceiling for benchmarks/collector_rate.py: tick k is at
 * start + k * period (absolute CLOCK_MONOTONIC, no drift), each tick is met by
 * an absolute clock_nanosleep to `margin` before it and a spin for the rest
 * (the same policy as capsync.service.schedule.Ticker at its widest margin),
 * and a thread late by a whole period or more skips the ticks it missed and
 * counts them, as the Ticker does. There is no Python, no GIL, no work per
 * tick: whatever this loses, any user-space program on this machine loses.
 *
 *   cyclic_reference PERIOD_NS SECONDS MARGIN_NS FIFO_PRIORITY
 *
 * FIFO_PRIORITY 0 keeps the normal scheduler (and its default timer slack).
 * Prints one JSON object: ticks met, ticks skipped, lateness percentiles (ns),
 * and whether SCHED_FIFO was granted.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s PERIOD_NS SECONDS MARGIN_NS FIFO_PRIORITY\n", argv[0]);
        return 2;
    }
    long long period_ns = atoll(argv[1]);
    double seconds = atof(argv[2]);
    long long margin_ns = atoll(argv[3]);
    int priority = atoi(argv[4]);
    if (period_ns <= 0 || seconds <= 0 || margin_ns < 0 || priority < 0) {
        fprintf(stderr, "cyclic_reference: bad argument\n");
        return 2;
    }
    int fifo = 0;
    if (priority > 0) {
        struct sched_param param = {.sched_priority = priority};
        fifo = sched_setscheduler(0, SCHED_FIFO, &param) == 0;
    }
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* as the capture thread asks */
    long long capacity = (long long)(seconds * 1e9 / period_ns) + 1;
    long long *lateness_ns = malloc(sizeof(long long) * capacity);
    if (lateness_ns == NULL) return 1;
    long long met = 0, skipped = 0;
    long long start_ns = now_ns();
    long long end_ns = start_ns + (long long)(seconds * 1e9);
    long long target = start_ns + period_ns;
    while (target < end_ns && met < capacity) {
        long long now = now_ns();
        if (now - target >= period_ns) {
            long long missed = (now - target) / period_ns;
            skipped += missed;
            target += missed * period_ns;
        }
        long long wake_at = target - margin_ns;
        if (now < wake_at) {
            struct timespec ts = {wake_at / 1000000000LL, wake_at % 1000000000LL};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
            }
        }
        while ((now = now_ns()) < target) {
        }
        lateness_ns[met++] = now - target;
        target += period_ns;
    }
    qsort(lateness_ns, met, sizeof(long long), by_value);
    printf(
        "{\"met\": %lld, \"skipped\": %lld, \"p50_ns\": %lld, \"p90_ns\": %lld, "
        "\"p99_ns\": %lld, \"p999_ns\": %lld, \"max_ns\": %lld, \"fifo\": %s}\n",
        met, skipped, lateness_ns[met / 2], lateness_ns[met * 90 / 100],
        lateness_ns[met * 99 / 100], lateness_ns[met * 999 / 1000], lateness_ns[met - 1],
        fifo ? "true" : "false");
    free(lateness_ns);
    return 0;
}
