/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum of record-file frames.
 *
 * The same CRC as iSCSI, ext4 metadata and Kafka's record batches, so any CRC32C library can
 * check our files. x86-64 CPUs with SSE4.2 compute it with the crc32 instruction (about
 * 8 bytes per 3 cycles); elsewhere a slicing-by-8 table does about 1 byte per cycle. The choice
 * is made at run time, so one binary runs on every x86-64.
 *
 * Values are the finished CRC (initial ~0 and final inversion already applied), and updates
 * chain: crc32c_update(crc32c_update(0, a, na), b, nb) == crc32c_update(0, a||b, na + nb). */
#ifndef LOGPROC_CRC32C_H
#define LOGPROC_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over buf[0..len). Uses the hardware path when the CPU has it.
 * Thread-safe; no allocation. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

/* The table path, always available. Same result as crc32c_update. */
uint32_t crc32c_update_sw(uint32_t crc, const void *buf, size_t len);

/* 1 when the CPU has the crc32 instruction (x86-64 SSE4.2), else 0. */
int crc32c_hw_available(void);

/* The instruction path. Call only when crc32c_hw_available() is 1: on other CPUs it would fault
 * (on non-x86 builds it is the table path). Exported so tests can check both paths agree. */
uint32_t crc32c_update_hw(uint32_t crc, const void *buf, size_t len);

#endif
