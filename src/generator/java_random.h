/* Java-compatible pseudo-randomness for the fake log generator.
 *
 * The reference generator makes every "random" decision from a java.util.Random seeded with a
 * hash of an id plus a salt (spec/fake-data.md §6). Reproducing its outputs id for id needs the
 * same arithmetic: String.hashCode over UTF-16 code units with 32-bit wrap-around, Random's
 * 48-bit linear congruential generator, and float32 rates. Everything here is pure and
 * allocation-free. */
#ifndef LOGPROC_JAVA_RANDOM_H
#define LOGPROC_JAVA_RANDOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* java.util.Random state: the 48-bit seed. A plain value; copy freely. */
typedef struct jrandom {
    uint64_t seed;
} jrandom;

/* new Random(seed) / setSeed(seed): scrambles seed with the multiplier, keeps 48 bits. */
void jrandom_seed(jrandom *r, int64_t seed);
/* Random.next(bits) for 1 <= bits <= 32: one LCG step, the top bits as a signed int. */
int32_t jrandom_next(jrandom *r, int bits);
/* Random.nextFloat(): 24 random bits / 2^24, in [0, 1). */
float jrandom_next_float(jrandom *r);
/* Random.nextInt() and Random.nextLong(). */
int32_t jrandom_next_int(jrandom *r);
int64_t jrandom_next_long(jrandom *r);

/* String.hashCode() of a UTF-8 string of len bytes, hashed as Java would hash the same text
 * (UTF-16 code units, supplementary characters as surrogate pairs). Invalid UTF-8 bytes count as
 * U+FFFD, as Java's decoder would produce. */
int32_t jrandom_string_hash(const char *s, size_t len);
/* Continues a String.hashCode() over more text: hash(a + b) from h = hash(a). */
int32_t jrandom_string_hash_more(int32_t h, const char *s, size_t len);

/* The generator's H(s) = hashCode(s) * 31 + 17 (32-bit wrap), on s = id + salt. */
int32_t jrandom_salted_hash(const char *id, size_t id_len, const char *salt);

/* roll(rate, id, salt): new Random(H(id + salt)).nextFloat() < rate, with rate as float32.
 * A rate <= 0 never passes and a rate >= 1 always does, without hashing. */
bool jrandom_roll(float rate, const char *id, size_t id_len, const char *salt);

/* count(rate, n, id, salt): x = float32(rate * n); ceil(x) when roll passes, else floor(x).
 * When x is a whole number the roll cannot matter and is skipped. */
int64_t jrandom_count(float rate, int64_t n, const char *id, size_t id_len, const char *salt);

/* x mod m shifted into [0, m) (Java % keeps the sign of x). m > 0. */
int32_t jrandom_mod_abs(int32_t x, int32_t m);

#endif
