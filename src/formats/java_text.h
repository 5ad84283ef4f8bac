/* Strings the reference pipeline's Java code computes, byte for byte: String.hashCode (the keys of
 * other_content_ids) and Float/Double.toString (text-format dumps, other content ids printed from
 * numbers). */
#ifndef LOGPROC_JAVA_TEXT_H
#define LOGPROC_JAVA_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Java's String.hashCode of the UTF-8 string s (len bytes): h = 31*h + c over its UTF-16 code
 * units (a code point above U+FFFF counts as its two surrogates), in 32-bit wrapping
 * arithmetic. An invalid UTF-8 byte counts as U+FFFD, as Java's decoder would make it.
 * "store" -> 109770977. O(len). */
int32_t java_string_hash(const char *s, size_t len);

/* Longest output of the two below, NUL included ("-2.2250738585072014E-308"). */
#define JAVA_DOUBLE_CHARS 32

/* Java's Double.toString(v) / Float.toString(f) into buf (cap >= JAVA_DOUBLE_CHARS),
 * NUL-terminated; return the length. The digits are those the Java 19+ specification defines:
 * the shortest decimal that rounds to the value (two digits when one would do, if two are
 * closer), the closest among them. Plain notation with at least one fraction digit for
 * 1e-3 <= |v| < 1e7 ("1.0", "2.3", "0.001"), otherwise d.dddE<n> ("1.0E7", "4.9E-324");
 * "NaN", "Infinity", "-Infinity", "0.0", "-0.0". Java 8-18 print a longer string for some
 * doubles of 1e16 and above (docs/JOIN.md). Cost: up to 17 rounds of printf + strtod. */
size_t java_double_string(double v, char *buf, size_t cap);
size_t java_float_string(float f, char *buf, size_t cap);

#endif
