/* Lower bounds of the tracker's scatter path, in plain C (benchmarks/bench_scatter_floor.py).
 *
 * One batch of S samples of H x W int64 entries (pixel index of a section rotated about its
 * centre, nearest source pixel, -1 outside; random classes and targets) is processed by loops
 * that do less and less of the work of segforget's fused scatter-and-step route, per sample
 * into windows that stay in the cache:
 *   read     only read the three input streams (the floor of any route that reads them)
 *   reduce   scatter with the duplicate reduction the tracker does (code and class maxima)
 *   packed   one packed byte per pixel, or-ed (a reduction without reading two bytes)
 *   store    plain byte stores, no reduction (wrong with duplicates: a floor, not an option)
 * Prints milliseconds per batch (CPU time, best of `rounds` rounds over 8 batches that
 * together exceed the last-level cache, so the inputs come from memory as in the tracker). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCHES 8

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

__attribute__((noinline)) static int64_t read_only(int64_t n, const int64_t *restrict index, const int64_t *restrict c,
                         const int64_t *restrict t) {
    int64_t sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (c[i] != t[i]) + (index[i] >= 0);
    return sum;
}

__attribute__((noinline)) static void reduce(int64_t n, const int64_t *restrict index, int64_t shift,
                   const int64_t *restrict c, const int64_t *restrict t, uint8_t *restrict code,
                   uint8_t *restrict cls) {
    for (int64_t i = 0; i < n; i++) {
        int64_t r = index[i];
        uint8_t cb = (uint8_t)c[i], tb = (uint8_t)t[i];
        if (r < 0 || t[i] == 255) continue;
        r += shift;
        uint8_t k = (uint8_t)(1 + (cb != tb)), old_code = code[r], old_cls = cls[r];
        code[r] = k > old_code ? k : old_code;
        cls[r] = cb > old_cls ? cb : old_cls;
    }
}

/* One packed byte per pixel (observed, wrong, one bit per class), written with ASSIGN:
 * `|=` reduces duplicates (packed), `=` does not (store: a floor, wrong with duplicates). */
#define DEFINE_BYTE_SCATTER(NAME, ASSIGN)                                                    \
    __attribute__((noinline)) static void NAME(int64_t n, const int64_t *restrict index,    \
                                               int64_t shift, const int64_t *restrict c,    \
                                               const int64_t *restrict t,                   \
                                               uint8_t *restrict win) {                     \
        for (int64_t i = 0; i < n; i++) {                                                    \
            int64_t r = index[i];                                                            \
            uint8_t cb = (uint8_t)c[i], tb = (uint8_t)t[i];                                  \
            if (r < 0 || t[i] == 255) continue;                                              \
            win[r + shift] ASSIGN(uint8_t)((1 + 2 * (cb != tb)) | (4u << (cb & 7)));         \
        }                                                                                    \
    }

DEFINE_BYTE_SCATTER(packed, |=)
DEFINE_BYTE_SCATTER(store, =)

int main(int argc, char **argv) {
    int64_t samples = argc > 1 ? atoll(argv[1]) : 8, height = argc > 2 ? atoll(argv[2]) : 255;
    int64_t width = argc > 3 ? atoll(argv[3]) : 701, rounds = argc > 4 ? atoll(argv[4]) : 5;
    int64_t per = height * width, n = samples * per;
    double angle = 5.0 * 3.14159265358979 / 180.0, ca = cos(angle), sa = sin(angle);
    int64_t *index[BATCHES], *cls_in[BATCHES], *tgt[BATCHES];
    uint8_t *code = calloc((size_t)per, 1), *cls = calloc((size_t)per, 1);
    srand(0);
    for (int q = 0; q < BATCHES; q++) {
        index[q] = malloc(8 * (size_t)n);
        cls_in[q] = malloc(8 * (size_t)n);
        tgt[q] = malloc(8 * (size_t)n);
        if (!index[q] || !cls_in[q] || !tgt[q]) return 1;
        for (int64_t b = 0; b < samples; b++)
            for (int64_t y = 0; y < height; y++)
                for (int64_t x = 0; x < width; x++) {
                    double cx = (double)x - width / 2.0, cy = (double)y - height / 2.0;
                    int64_t sx = llround(ca * cx + sa * cy + width / 2.0);
                    int64_t sy = llround(-sa * cx + ca * cy + height / 2.0);
                    int64_t i = (b * height + y) * width + x;
                    int outside = sx < 0 || sx >= width || sy < 0 || sy >= height;
                    index[q][i] = outside ? -1 : (q * samples + b) * per + sy * width + sx;
                    cls_in[q][i] = rand() % 6;
                    tgt[q][i] = rand() % 6;
                }
    }
    const char *names[4] = {"read", "reduce", "packed", "store"};
    double best[4] = {1e9, 1e9, 1e9, 1e9};
    volatile int64_t sink = 0;
    for (int64_t round = 0; round < rounds; round++) {
        for (int kind = 0; kind < 4; kind++) {
            double start = cpu_seconds();
            for (int q = 0; q < BATCHES; q++) {
                if (kind == 0) {
                    sink += read_only(n, index[q], cls_in[q], tgt[q]);
                    continue;
                }
                for (int64_t b = 0; b < samples; b++) {
                    int64_t at = b * per, shift = -(q * samples + b) * per;
                    memset(code, 0, (size_t)per);
                    memset(cls, 0, (size_t)per);
                    if (kind == 1)
                        reduce(per, index[q] + at, shift, cls_in[q] + at, tgt[q] + at, code, cls);
                    else if (kind == 2)
                        packed(per, index[q] + at, shift, cls_in[q] + at, tgt[q] + at, code);
                    else
                        store(per, index[q] + at, shift, cls_in[q] + at, tgt[q] + at, code);
                    sink += code[per / 2];
                }
            }
            double ms = (cpu_seconds() - start) / BATCHES * 1e3;
            best[kind] = ms < best[kind] ? ms : best[kind];
        }
    }
    for (int kind = 0; kind < 4; kind++) printf("%s %.4f\n", names[kind], best[kind]);
    return sink == -1;
}
