/* Fused observation step of the tracker's compact state (segforget.dynamics._native).
 *
 * One pass over the pixels of a state view: read the inputs and the 12 bytes of state, write
 * the state. Bit-identical to segforget.dynamics._kernel.observe_ (the torch path); the tests
 * run both. Counters are uint16 (the torch path's int16 patterns), overflow is checked by the
 * caller before the call.
 *
 * Loops are written without branches and with one element width per loop, so compilers
 * vectorize them; on x86-64 AVX2 clones (AVX-512 for the scans over int64 indices) are
 * picked at load time when the CPU has them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(SEGFORGET_NO_CLONES)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
/* AVX-512 (unsigned 64-bit min/max, 8 lanes of int64): the scans over int64 indices gain. */
#define VECTOR_CLONES_WIDE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#define VECTOR_CLONES_WIDE
#endif

#define STAGE 1024 /* pixels staged per chunk: in L1, and little stack (threads may have small stacks) */

typedef struct {
    uint16_t *observations, *correct, *forgetting, *switches, *first_learned;
    uint8_t *last_prediction, *flags;
} state_t;

/* Flags: 1 last observation correct, 2 observed at least once, 4 ever correct. */
VECTOR_CLONES
static void step(int64_t n, const uint8_t *restrict cls, const uint8_t *restrict ok,
                 const uint8_t *restrict seen_now, uint16_t *restrict observations,
                 uint16_t *restrict correct, uint16_t *restrict forgetting,
                 uint16_t *restrict switches, uint16_t *restrict first_learned,
                 uint8_t *restrict last_prediction, uint8_t *restrict flags) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t c = cls[i], k = ok[i], o = seen_now[i];
        uint16_t f = flags[i], last = last_prediction[i], count = observations[i];
        uint16_t keep = (uint16_t)(o - 1); /* 0xFFFF where not observed: state unchanged */
        switches[i] += (uint16_t)((f >> 1) & o & (uint16_t)(last != c));
        forgetting[i] += (uint16_t)(f & 1 & (o ^ k));
        correct[i] += k;
        /* newly learned: correct now, learned bit (4) not set; first_learned = count so far */
        first_learned[i] += (uint16_t)(-(k & (uint16_t)(~f >> 2) & 1)) & count;
        observations[i] = (uint16_t)(count + o);
        last_prediction[i] = (uint8_t)((last & keep) | (c & (uint16_t)~keep));
        flags[i] = (uint8_t)((f & (keep | 4)) | (uint16_t)(k * 5) | (uint16_t)(o * 2));
    }
}

static void step_state(int64_t n, int64_t at, const uint8_t *cls, const uint8_t *ok,
                       const uint8_t *seen_now, const state_t *s) {
    step(n, cls, ok, seen_now, s->observations + at, s->correct + at, s->forgetting + at,
         s->switches + at, s->first_learned + at, s->last_prediction + at, s->flags + at);
}

/* Stage n inputs as bytes: class, correct (and observed), observed. Staged pixel i comes from
 * source FROM(i): i, or n - 1 - i for a mirrored line (c and t then point at the lowest
 * address of the line's piece; the sources are read forwards and the bytes written in reverse,
 * which compilers vectorize, where reading 8-byte sources backwards they do not).
 * `ignore_byte`: compare targets as bytes. */
#define FORWARDS(i) (i)
#define BACKWARDS(i) (n - 1 - (i))
#define DEFINE_STAGE(NAME, CTYPE, TTYPE, TO)                                                 \
    VECTOR_CLONES                                                                            \
    static void NAME(int64_t n, const void *classes, const void *target, int64_t ignore,    \
                     int ignore_byte, uint8_t *restrict cls, uint8_t *restrict ok,          \
                     uint8_t *restrict seen_now) {                                          \
        const CTYPE *restrict c = classes;                                                   \
        const TTYPE *restrict t = target;                                                    \
        if (ignore_byte) {                                                                   \
            uint8_t ig = (uint8_t)ignore;                                                    \
            for (int64_t i = 0; i < n; i++) {                                                \
                uint8_t cb = (uint8_t)c[i], tb = (uint8_t)t[i];                              \
                uint8_t o = (uint8_t)(tb != ig);                                             \
                cls[TO(i)] = cb;                                                             \
                seen_now[TO(i)] = o;                                                         \
                ok[TO(i)] = (uint8_t)((cb == tb) & o);                                       \
            }                                                                                \
        } else {                                                                             \
            for (int64_t i = 0; i < n; i++) {                                                \
                uint8_t cb = (uint8_t)c[i], tb = (uint8_t)t[i];                              \
                uint8_t o = (uint8_t)((int64_t)t[i] != ignore);                              \
                cls[TO(i)] = cb;                                                             \
                seen_now[TO(i)] = o;                                                         \
                ok[TO(i)] = (uint8_t)((cb == tb) & o);                                       \
            }                                                                                \
        }                                                                                    \
    }

DEFINE_STAGE(stage_i64_i64, int64_t, int64_t, FORWARDS)
DEFINE_STAGE(stage_u8_u8, uint8_t, uint8_t, FORWARDS)
DEFINE_STAGE(stage_u8_i64, uint8_t, int64_t, FORWARDS)
DEFINE_STAGE(stage_i64_u8, int64_t, uint8_t, FORWARDS)
DEFINE_STAGE(stage_back_i64_i64, int64_t, int64_t, BACKWARDS)
DEFINE_STAGE(stage_back_u8_u8, uint8_t, uint8_t, BACKWARDS)
DEFINE_STAGE(stage_back_u8_i64, uint8_t, int64_t, BACKWARDS)
DEFINE_STAGE(stage_back_i64_u8, int64_t, uint8_t, BACKWARDS)

VECTOR_CLONES
static void codes_to_bytes(int64_t n, const uint8_t *restrict code, uint8_t *restrict ok,
                           uint8_t *restrict seen_now) {
    for (int64_t i = 0; i < n; i++) {
        ok[i] = (uint8_t)(code[i] == 1);
        seen_now[i] = (uint8_t)(code[i] != 0);
    }
}

/* Index of a (class bytes, target bytes) pair in the kernel tables: 1 or 8 bytes each. */
static int width_pair(int c_bytes, int t_bytes) { return (c_bytes == 8) * 2 + (t_bytes == 8); }

typedef void (*stage_fn)(int64_t, const void *, const void *, int64_t, int, uint8_t *, uint8_t *,
                         uint8_t *);
static const stage_fn STAGE_FORWARDS[4] = {stage_u8_u8, stage_u8_i64, stage_i64_u8, stage_i64_i64};
static const stage_fn STAGE_BACKWARDS[4] = {stage_back_u8_u8, stage_back_u8_i64, stage_back_i64_u8,
                                            stage_back_i64_i64};

/* Stage n pixels from classes c and targets t (1 or 8 bytes each): forwards, or, when
 * `mirrored`, backwards from c and t (which then point at the source of the first pixel). */
static void stage(int64_t n, int mirrored, const void *c, int c_bytes, const void *t,
                  int t_bytes, int64_t ignore, int ignore_byte, uint8_t *cls, uint8_t *ok,
                  uint8_t *seen) {
    if (mirrored) { /* the backwards kernels take the lowest address of the piece */
        c = (const char *)c - (n - 1) * c_bytes;
        t = (const char *)t - (n - 1) * t_bytes;
    }
    const stage_fn *table = mirrored ? STAGE_BACKWARDS : STAGE_FORWARDS;
    table[width_pair(c_bytes, t_bytes)](n, c, t, ignore, ignore_byte, cls, ok, seen);
}

/* One observation of `lines` x `width` pixels whose state is contiguous from the pointers in
 * `s`, from predicted classes and targets (1 or 8 bytes each, `lines` x `width`, C order).
 * `mirrored`: each input line is stored right to left. Pixels whose target equals `ignore`
 * (compared as bytes when `ignore_byte`) are not observed. Returns 0, or -1 on bad sizes. */
int segforget_observe_targets(int64_t lines, int64_t width, int mirrored, const void *classes,
                              int class_bytes, const void *target, int target_bytes,
                              int64_t ignore, int ignore_byte, uint16_t *observations,
                              uint16_t *correct, uint16_t *forgetting, uint16_t *switches,
                              uint16_t *first_learned, uint8_t *last_prediction,
                              uint8_t *flags) {
    if ((class_bytes != 1 && class_bytes != 8) || (target_bytes != 1 && target_bytes != 8))
        return -1;
    state_t s = {observations, correct, forgetting, switches, first_learned, last_prediction,
                 flags};
    uint8_t cls[STAGE], ok[STAGE], seen[STAGE];
    const char *cp = classes, *tp = target;
    for (int64_t line = 0; line < lines; line++) {
        for (int64_t col = 0; col < width; col += STAGE) {
            int64_t n = width - col < STAGE ? width - col : STAGE;
            int64_t at = line * width + col;
            /* a mirrored line is read backwards from the source of its first pixel */
            int64_t source = mirrored ? line * width + (width - 1 - col) : at;
            stage(n, mirrored, cp + source * class_bytes, class_bytes, tp + source * target_bytes,
                  target_bytes, ignore, ignore_byte, cls, ok, seen);
            step_state(n, at, cls, ok, seen, &s);
        }
    }
    return 0;
}

/* Several block runs of one batch in one call: run r reads `length[r]` entries of the
 * inputs from entry input_at[r] and updates the state from pixel state_at[r] (pointers in
 * `observations` .. `flags` are the state's base), as segforget_observe_targets does for one
 * run: lines of `width` entries when `mirrored`, else one line. Returns 0, or -1 on bad sizes. */
int segforget_observe_target_runs(int64_t runs, const int64_t *input_at, const int64_t *state_at,
                                  const int64_t *length, int64_t width, int mirrored,
                                  const void *classes, int class_bytes, const void *target,
                                  int target_bytes, int64_t ignore, int ignore_byte,
                                  uint16_t *observations, uint16_t *correct,
                                  uint16_t *forgetting, uint16_t *switches,
                                  uint16_t *first_learned, uint8_t *last_prediction,
                                  uint8_t *flags) {
    for (int64_t r = 0; r < runs; r++) {
        int64_t n = length[r], at = state_at[r], from = input_at[r];
        int64_t line = mirrored ? width : n;
        if (line <= 0 || n % line) return -1;
        int done = segforget_observe_targets(
            n / line, line, mirrored, (const char *)classes + from * class_bytes, class_bytes,
            (const char *)target + from * target_bytes, target_bytes, ignore, ignore_byte,
            observations + at, correct + at, forgetting + at, switches + at, first_learned + at,
            last_prediction + at, flags + at);
        if (done) return done;
    }
    return 0;
}

/* Step n pixels of `s` chunk by chunk from derived bytes (`ok`, `seen_now`), or, when `code`
 * is not NULL, from window codes (0 not observed, 1 correct, 2 wrong) converted per chunk. */
static void step_derived(int64_t n, const uint8_t *cls, const uint8_t *ok,
                         const uint8_t *seen_now, const uint8_t *code, const state_t *s) {
    uint8_t ok_chunk[STAGE], seen_chunk[STAGE];
    for (int64_t at = 0; at < n; at += STAGE) {
        int64_t m = n - at < STAGE ? n - at : STAGE;
        if (code) {
            codes_to_bytes(m, code + at, ok_chunk, seen_chunk);
            step_state(m, at, cls + at, ok_chunk, seen_chunk, s);
        } else {
            step_state(m, at, cls + at, ok + at, seen_now + at, s);
        }
    }
}

/* One observation of n pixels from bytes already derived: `ok` correct (0 where not observed),
 * `cls` predicted class, `seen_now` observed (0/1). */
int segforget_observe_bytes(int64_t n, const uint8_t *ok, const uint8_t *cls,
                            const uint8_t *seen_now, uint16_t *observations, uint16_t *correct,
                            uint16_t *forgetting, uint16_t *switches, uint16_t *first_learned,
                            uint8_t *last_prediction, uint8_t *flags) {
    state_t s = {observations, correct, forgetting, switches, first_learned, last_prediction,
                 flags};
    step_derived(n, cls, ok, seen_now, NULL, &s);
    return 0;
}

/* Per-sample smallest and largest nonnegative entry of `index` (samples x per_sample);
 * low = INT64_MAX and high = -1 for a sample without one. The smallest is taken over the
 * entries read as unsigned (negative ones become larger than any pixel), which compilers turn
 * into vector min/max without a mask. */
VECTOR_CLONES_WIDE
void segforget_index_bounds(int64_t samples, int64_t per_sample, const int64_t *restrict index,
                            int64_t *restrict low, int64_t *restrict high) {
    for (int64_t b = 0; b < samples; b++) {
        const int64_t *row = index + b * per_sample;
        uint64_t lo = UINT64_MAX;
        int64_t hi = -1;
        for (int64_t i = 0; i < per_sample; i++) {
            int64_t v = row[i];
            lo = (uint64_t)v < lo ? (uint64_t)v : lo;
            hi = v > hi ? v : hi;
        }
        low[b] = lo > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)lo;
        high[b] = hi;
    }
}

/* Scatter the observed entries into dense windows: entry i of sample b (pixel index[i] >= 0,
 * target not ignored) lands at position index[i] + shift[b]; per position, `code` keeps the
 * largest of 1 (correct) and 2 (wrong), `cls` the largest predicted class. Positions of
 * unobserved pixels keep code 0. The windows must be zeroed by the caller.
 *
 * One scalar loop straight over the inputs: staging them as bytes first (as the block route
 * does) makes a second pass that costs more than it saves here, where the scatter dominates. */
#define DEFINE_SCATTER(NAME, CTYPE, TTYPE)                                                   \
    static void NAME(int64_t n, const int64_t *restrict index, int64_t offset,               \
                     const void *classes, const void *target, int64_t ignore,                \
                     int ignore_byte, uint8_t *restrict code, uint8_t *restrict cls) {       \
        const CTYPE *restrict c = classes;                                                   \
        const TTYPE *restrict t = target;                                                    \
        for (int64_t i = 0; i < n; i++) {                                                    \
            int64_t r = index[i];                                                            \
            uint8_t cb = (uint8_t)c[i], tb = (uint8_t)t[i];                                  \
            int unobserved = ignore_byte ? tb == (uint8_t)ignore : (int64_t)t[i] == ignore;  \
            if (r < 0 || unobserved) continue;                                               \
            int64_t p = r + offset;                                                          \
            uint8_t k = (uint8_t)(1 + (cb != tb)), old_code = code[p], old_cls = cls[p];     \
            code[p] = k > old_code ? k : old_code;                                           \
            cls[p] = cb > old_cls ? cb : old_cls;                                            \
        }                                                                                    \
    }

DEFINE_SCATTER(scatter_i64_i64, int64_t, int64_t)
DEFINE_SCATTER(scatter_u8_u8, uint8_t, uint8_t)
DEFINE_SCATTER(scatter_u8_i64, uint8_t, int64_t)
DEFINE_SCATTER(scatter_i64_u8, int64_t, uint8_t)

typedef void (*scatter_fn)(int64_t, const int64_t *, int64_t, const void *, const void *,
                           int64_t, int, uint8_t *, uint8_t *);
static const scatter_fn SCATTERS[4] = {scatter_u8_u8, scatter_u8_i64, scatter_i64_u8,
                                       scatter_i64_i64};

void segforget_scatter_codes(int64_t samples, int64_t per_sample, const int64_t *restrict index,
                             const int64_t *restrict shift, const void *classes,
                             int class_bytes, const void *target, int target_bytes,
                             int64_t ignore, int ignore_byte, uint8_t *restrict code,
                             uint8_t *restrict cls) {
    scatter_fn scatter = SCATTERS[width_pair(class_bytes, target_bytes)];
    for (int64_t b = 0; b < samples; b++) {
        int64_t at = b * per_sample;
        scatter(per_sample, index + at, shift[b], (const char *)classes + at * class_bytes,
                (const char *)target + at * target_bytes, ignore, ignore_byte, code, cls);
    }
}

/* Scatter and observe window by window: window w covers the state pixels first[w] ..
 * first[w] + length[w] - 1 and holds the samples members[begin[w]] .. members[begin[w + 1] - 1]
 * (samples x per_sample entries of index, classes and target; an entry of one of them lies in
 * its window or is negative). Per window: zero `code` and `cls` (scratch of at least the
 * largest length), scatter the window's samples into them (duplicates reduced as in
 * segforget_scatter_codes), then step the window's state from them while they are still in
 * cache. Scattering the whole batch first instead sends windows the size of the batch through
 * memory twice. Returns 0, or -1 on bad sizes. */
int segforget_scatter_observe(int64_t windows, const int64_t *first, const int64_t *length,
                              const int64_t *begin, const int64_t *members, int64_t per_sample,
                              const int64_t *index, const void *classes, int class_bytes,
                              const void *target, int target_bytes, int64_t ignore,
                              int ignore_byte, uint8_t *code, uint8_t *cls,
                              uint16_t *observations, uint16_t *correct, uint16_t *forgetting,
                              uint16_t *switches, uint16_t *first_learned,
                              uint8_t *last_prediction, uint8_t *flags) {
    if ((class_bytes != 1 && class_bytes != 8) || (target_bytes != 1 && target_bytes != 8))
        return -1;
    scatter_fn scatter = SCATTERS[width_pair(class_bytes, target_bytes)];
    for (int64_t w = 0; w < windows; w++) {
        int64_t n = length[w], at = first[w];
        memset(code, 0, (size_t)n);
        memset(cls, 0, (size_t)n);
        for (int64_t m = begin[w]; m < begin[w + 1]; m++) {
            int64_t from = members[m] * per_sample;
            scatter(per_sample, index + from, -at, (const char *)classes + from * class_bytes,
                    (const char *)target + from * target_bytes, ignore, ignore_byte, code, cls);
        }
        state_t s = {observations + at, correct + at, forgetting + at, switches + at,
                     first_learned + at, last_prediction + at, flags + at};
        step_derived(n, cls, NULL, NULL, code, &s);
    }
    return 0;
}

/* One observation of n pixels from window codes (0 unobserved, 1 correct, 2 wrong). */
int segforget_observe_codes(int64_t n, const uint8_t *code, const uint8_t *cls,
                            uint16_t *observations, uint16_t *correct, uint16_t *forgetting,
                            uint16_t *switches, uint16_t *first_learned,
                            uint8_t *last_prediction, uint8_t *flags) {
    state_t s = {observations, correct, forgetting, switches, first_learned, last_prediction,
                 flags};
    step_derived(n, cls, NULL, NULL, code, &s);
    return 0;
}

/* Whether each of `samples` samples of `lines` x `width` entries of `index` is one contiguous
 * run of the pixel space, row after row: index[b][r][j] == start[b] + r * width + j, or, when
 * `flipped`, + r * width + (width - 1 - j) (each line mirrored). start[b] is the run's first
 * pixel. The scan stops at the first line that does not match. Returns the number of samples
 * found to be runs (= samples when all are). */
VECTOR_CLONES_WIDE
int64_t segforget_block_starts(int64_t samples, int64_t lines, int64_t width, int flipped,
                               const int64_t *restrict index, int64_t *restrict start) {
    for (int64_t b = 0; b < samples; b++) {
        const int64_t *sample = index + b * lines * width;
        int64_t first = flipped ? sample[width - 1] : sample[0];
        for (int64_t r = 0; r < lines; r++) {
            const int64_t *row = sample + r * width;
            int64_t base = first + r * width, top = base + width - 1;
            int match = 1;
            if (flipped)
                for (int64_t j = 0; j < width; j++) match &= row[j] == top - j;
            else
                for (int64_t j = 0; j < width; j++) match &= row[j] == base + j;
            if (!match) return b;
        }
        start[b] = first;
    }
    return samples;
}

/* Whether each of `rows` rows of `width` entries of `index` is a contiguous run of the pixel
 * space: direction[r] = 1 when index[r][j] == index[r][0] + j for all j (start[r] =
 * index[r][0]), -1 when index[r][j] == index[r][0] - j (start[r] = index[r][0] - width + 1),
 * else the scan stops. Returns the number of rows found to be runs (= rows when all are). */
VECTOR_CLONES_WIDE
int64_t segforget_row_runs(int64_t rows, int64_t width, const int64_t *restrict index,
                           int64_t *restrict start, int8_t *restrict direction) {
    for (int64_t r = 0; r < rows; r++) {
        const int64_t *row = index + r * width;
        int64_t first = row[0];
        int forward = 1, backward = 1;
        for (int64_t j = 0; j < width; j++) {
            forward &= row[j] == first + j;
            backward &= row[j] == first - j;
        }
        if (forward) {
            direction[r] = 1;
            start[r] = first;
        } else if (backward) {
            direction[r] = -1;
            start[r] = first - (width - 1);
        } else {
            return r;
        }
    }
    return rows;
}

/* One observation of `rows` runs of `width` pixels: input row r (classes and targets, 1 or 8
 * bytes each) goes to the pixels start[r] .. start[r] + width - 1 of the state (reversed when
 * direction[r] is -1). The runs must not overlap. `order` lists the rows by ascending start and
 * rank[r] is row r's place in it. Two passes: the inputs are staged as bytes in their own
 * order (one forward stream) into `scratch` (3 x rows x width bytes) at their rank, then the
 * state is stepped in ascending order, runs that follow each other in one step. Visiting the
 * input rows in state order instead (a vertical flip reads them backwards) stalls on every
 * new row: the hardware prefetcher does not follow that pattern. */
int segforget_observe_rows(int64_t rows, int64_t width, const int64_t *order, const int64_t *rank,
                           const int64_t *start, const int8_t *direction, const void *classes,
                           int class_bytes, const void *target, int target_bytes, int64_t ignore,
                           int ignore_byte, uint8_t *scratch, uint16_t *observations,
                           uint16_t *correct, uint16_t *forgetting, uint16_t *switches,
                           uint16_t *first_learned, uint8_t *last_prediction, uint8_t *flags) {
    if ((class_bytes != 1 && class_bytes != 8) || (target_bytes != 1 && target_bytes != 8))
        return -1;
    state_t s = {observations, correct, forgetting, switches, first_learned, last_prediction,
                 flags};
    int64_t total = rows * width;
    uint8_t *cls = scratch, *ok = scratch + total, *seen = scratch + 2 * total;
    const char *cp = classes, *tp = target;
    /* pass 1: the inputs in their own order (one forward stream), staged at their rank */
    for (int64_t r = 0; r < rows; r++) {
        int mirrored = direction[r] < 0;
        int64_t at = rank[r] * width;
        int64_t source = r * width + (mirrored ? width - 1 : 0);
        stage(width, mirrored, cp + source * class_bytes, class_bytes, tp + source * target_bytes,
              target_bytes, ignore, ignore_byte, cls + at, ok + at, seen + at);
    }
    /* pass 2: the state in ascending order, adjacent runs stepped together */
    int64_t k = 0;
    while (k < rows) {
        int64_t first = k, state_at = start[order[k]];
        while (k + 1 < rows && start[order[k + 1]] == state_at + (k + 1 - first) * width) k++;
        int64_t n = (k + 1 - first) * width, at = first * width;
        step_state(n, state_at, cls + at, ok + at, seen + at, &s);
        k++;
    }
    return 0;
}
