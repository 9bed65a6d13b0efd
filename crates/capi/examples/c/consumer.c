/*
 * Receives the seed's market ticks from a tachyon bus through the C ABI, in batches read in
 * place, until the empty type-0 sentinel; counts bids, asks and anything else, and sums the
 * quantities. A NULL from the blocking receive is a signal (look, then wait again) or a dead
 * ring or peer (tachyon_get_state says so).
 *
 *   cc -std=c99 consumer.c -ltachyon -o consumer
 *   ./consumer --socket /tmp/tachyon_market.sock --listen
 *
 * Prints one JSON line: {"received": N, "bids": B, "asks": A, "other": O, "volume": V}.
 */
#include "common.h"

#define BATCH 256

int main(int argc, char **argv) {
    struct options options = parse_options(argc, argv, 1);
    tachyon_bus_t *bus = open_bus(&options, "consumer");
    tachyon_msg_view_t views[BATCH];
    long bids = 0, asks = 0, other = 0;
    uint64_t volume = 0;
    int done = 0;
    while (!done) {
        size_t count = tachyon_drain_batch(bus, views, BATCH, 10000);
        size_t i;
        if (count == 0) {
            if (tachyon_get_state(bus) == TACHYON_STATE_FATAL_ERROR) {
                fprintf(stderr, "consumer: the ring or the producer is dead\n");
                return 2;
            }
            continue; /* a signal: nothing to do here but wait again */
        }
        for (i = 0; i < count && !done; i++) {
            const unsigned char *tick = (const unsigned char *)views[i].ptr;
            uint32_t quantity;
            if (views[i].type_id == TYPE_END) {
                done = 1;
            } else if (views[i].actual_size != TICK_SIZE ||
                       (views[i].type_id != TYPE_BID && views[i].type_id != TYPE_ASK)) {
                other++;
            } else {
                memcpy(&quantity, tick + 16, sizeof quantity);
                volume += quantity;
                if (views[i].type_id == TYPE_BID) {
                    bids++;
                } else {
                    asks++;
                }
            }
        }
        tachyon_commit_rx_batch(bus, views, count);
    }
    printf("{\"received\": %ld, \"bids\": %ld, \"asks\": %ld, \"other\": %ld, \"volume\": %llu}\n",
           bids + asks + other, bids, asks, other, (unsigned long long)volume);
    tachyon_bus_destroy(bus);
    return 0;
}
