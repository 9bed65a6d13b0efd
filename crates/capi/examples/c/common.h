/*
 * Shared by producer.c and consumer.c: the seed's MarketTick and argument parsing.
 *
 * MarketTick, 32 bytes little endian, packed: symbol[8] at 0, price (double) at 8,
 * quantity (uint32) at 16, timestamp (uint64 ns since the epoch) at 20, 4 bytes of padding.
 * type_id 1 = bid, 2 = ask, 0 = the empty end-of-stream sentinel.
 */
#ifndef TACHYON_EXAMPLE_COMMON_H
#define TACHYON_EXAMPLE_COMMON_H

#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tachyon.h>

#define TICK_SIZE 32
#define TYPE_END 0
#define TYPE_BID 1
#define TYPE_ASK 2

struct options {
    const char *socket;
    int listen; /* 1: create the ring and wait; 0: connect (retrying) */
    size_t capacity;
    long count;
    double connect_timeout;
};

static void usage(const char *program) {
    fprintf(stderr,
            "usage: %s [--socket PATH] [--listen | --connect] [--capacity BYTES]\n"
            "          [--count N] [--connect-timeout SECONDS]\n",
            program);
    exit(64);
}

static struct options parse_options(int argc, char **argv, int listen_by_default) {
    struct options options;
    int i;
    options.socket = "/tmp/tachyon_market.sock";
    options.listen = listen_by_default;
    options.capacity = (size_t)1 << 20;
    options.count = 1000000;
    options.connect_timeout = 10.0;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--listen") == 0) {
            options.listen = 1;
        } else if (strcmp(arg, "--connect") == 0) {
            options.listen = 0;
        } else if (value == NULL) {
            usage(argv[0]);
        } else if (strcmp(arg, "--socket") == 0) {
            options.socket = value;
            i++;
        } else if (strcmp(arg, "--capacity") == 0) {
            options.capacity = (size_t)strtoull(value, NULL, 10);
            i++;
        } else if (strcmp(arg, "--count") == 0) {
            options.count = strtol(value, NULL, 10);
            i++;
        } else if (strcmp(arg, "--connect-timeout") == 0) {
            options.connect_timeout = strtod(value, NULL);
            i++;
        } else {
            usage(argv[0]);
        }
    }
    return options;
}

static double monotonic_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void pause_micros(long micros) {
    struct timespec pause;
    pause.tv_sec = micros / 1000000;
    pause.tv_nsec = (micros % 1000000) * 1000;
    nanosleep(&pause, NULL);
}

/* Listens, or connects with retries until the timeout (connect fails at once while nobody
 * listens). Exits on failure. */
static tachyon_bus_t *open_bus(const struct options *options, const char *program) {
    tachyon_bus_t *bus = NULL;
    tachyon_error_t error;
    if (options->listen) {
        error = tachyon_bus_listen(options->socket, options->capacity, &bus);
    } else {
        double give_up = monotonic_seconds() + options->connect_timeout;
        for (;;) {
            error = tachyon_bus_connect(options->socket, &bus);
            if (error != TACHYON_ERR_NETWORK || monotonic_seconds() >= give_up) {
                break;
            }
            pause_micros(20000);
        }
    }
    if (error != TACHYON_SUCCESS) {
        fprintf(stderr, "%s: cannot open the bus at %s: error %d\n", program, options->socket,
                (int)error);
        exit(1);
    }
    return bus;
}

#endif
