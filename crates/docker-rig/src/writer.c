/* The rig's log writer, built static (no image can be pulled: it is the whole image).
 * writer LINES RATE BYTES: prints LINES numbered lines of BYTES bytes (newline included) at RATE
 * lines a second, in 10 ms steps, to stdout; one write(2) per step. Then it waits to be stopped:
 * Docker ends a followed stream when its container stops, even with files left unread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: writer LINES RATE BYTES\n");
        return 2;
    }
    long lines = atol(argv[1]), rate = atol(argv[2]), bytes = atol(argv[3]);
    if (lines < 1 || rate < 1 || bytes < 12 || bytes > 16000) {
        fprintf(stderr, "writer: LINES and RATE must be positive and BYTES between 12 and 16000\n");
        return 2;
    }
    char *buf = malloc((size_t)bytes * (size_t)rate + 1);
    struct timespec start, now, tick = {0, 10 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    long next = 0;
    while (next < lines) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double elapsed = (now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9;
        long due = (long)(elapsed * rate) + 1;
        if (due > lines) due = lines;
        size_t len = 0;
        for (; next < due && len + bytes <= (size_t)bytes * (size_t)rate; next++) {
            int n = snprintf(buf + len, 12, "%010ld ", next);
            memset(buf + len + n, 'x', bytes - n - 1);
            buf[len + bytes - 1] = '\n';
            len += bytes;
        }
        for (size_t off = 0; off < len;) {
            ssize_t w = write(1, buf + off, len - off);
            if (w <= 0) return 1;
            off += (size_t)w;
        }
        nanosleep(&tick, NULL);
    }
    for (;;) pause();
}
