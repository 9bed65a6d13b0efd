/*
 * Streams the seed's market ticks onto a tachyon bus through the C ABI: --count ticks
 * (alternately bids and asks), written in place, published every 64, then the empty type-0
 * sentinel. A full ring is waited out (upstream's acquire never waits); a dead ring ends it.
 *
 *   cc -std=c99 producer.c -ltachyon -o producer
 *   ./producer --socket /tmp/tachyon_market.sock --connect --count 1000000
 *
 * Prints one JSON line: {"sent": N, "full_retries": R}.
 */
#include "common.h"

#define PUBLISH_EVERY 64

static uint64_t now_nanos(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* A slot for `size` bytes, waiting while the ring is full. */
static unsigned char *acquire(tachyon_bus_t *bus, size_t size, long *full_retries) {
    for (;;) {
        void *slot = tachyon_acquire_tx(bus, size);
        if (slot != NULL) {
            return (unsigned char *)slot;
        }
        if (tachyon_get_state(bus) == TACHYON_STATE_FATAL_ERROR) {
            fprintf(stderr, "producer: the ring is dead\n");
            exit(2);
        }
        tachyon_flush(bus);
        ++*full_retries;
        pause_micros(50);
    }
}

int main(int argc, char **argv) {
    struct options options = parse_options(argc, argv, 0);
    tachyon_bus_t *bus = open_bus(&options, "producer");
    long full_retries = 0;
    long i;
    for (i = 0; i < options.count; i++) {
        unsigned char *tick = acquire(bus, TICK_SIZE, &full_retries);
        double price = 65000.0 + (double)(i % 100) * 0.5;
        uint32_t quantity = (uint32_t)(1 + i % 1000);
        uint64_t timestamp = now_nanos();
        memcpy(tick, "BTCUSDT", 8); /* with its NUL: 8 bytes */
        memcpy(tick + 8, &price, sizeof price);
        memcpy(tick + 16, &quantity, sizeof quantity);
        memcpy(tick + 20, &timestamp, sizeof timestamp);
        memset(tick + 28, 0, 4);
        if (tachyon_commit_tx(bus, TICK_SIZE, (i & 1) ? TYPE_ASK : TYPE_BID) != TACHYON_SUCCESS) {
            fprintf(stderr, "producer: commit failed\n");
            return 1;
        }
        if ((i + 1) % PUBLISH_EVERY == 0) {
            tachyon_flush(bus);
        }
    }
    acquire(bus, 0, &full_retries);
    if (tachyon_commit_tx(bus, 0, TYPE_END) != TACHYON_SUCCESS) {
        fprintf(stderr, "producer: commit of the sentinel failed\n");
        return 1;
    }
    tachyon_flush(bus);
    printf("{\"sent\": %ld, \"full_retries\": %ld}\n", options.count, full_retries);
    tachyon_bus_destroy(bus);
    return 0;
}
