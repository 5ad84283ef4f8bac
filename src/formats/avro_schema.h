/*
 * avro_schema: the Avro schema of a protobuf message type, derived from its protobuf-c
 * descriptor by one mapping rule (the reference pipeline's Avro-protobuf mapping with its
 * recursion unrolling; docs/AVRO.md has the rule in full):
 *
 *  - a message is a record named after the message; its namespace is the Java package of the
 *    proto package (event, delivery, common -> ai.promoted.proto.<pkg>; google.protobuf ->
 *    com.google.protobuf; any other package is used as it is), plus the names of the messages
 *    it is nested in, joined by '_' (Java used '$', which avro-c rejects);
 *  - fields in protobuf-c's order (ascending field number), with the proto snake_case names;
 *  - scalars are never nullable: 32-bit integers -> int, 64-bit -> long, float, double,
 *    bool -> boolean, string, bytes; an absent scalar is written as its zero value;
 *  - an enum lists the proto value names (ascending number) plus a trailing UNRECOGNIZED;
 *  - a singular message is ["null", Record], repeated T is array<T> (array<Record> for
 *    messages), a map is the array of its {key, value} entry records;
 *  - recursion is unrolled: every set of mutually recursive messages (a "family", found from
 *    the descriptors) is copied at depths 1..5 with the depth appended to the name (Struct1,
 *    Value1, ListValue1, Struct1.FieldsEntry ...). The depth rises when a path passes the one
 *    family member that lies on every cycle (google.protobuf.Value). A field that would need
 *    depth 6 is left out of the depth-5 copy; data in it is cut and counted by the encoder;
 *  - a message that holds a family member directly is renamed Flat<Name> (this yields exactly
 *    the reference's FlatProperties, FlatRequest and FlatQualityScoreConfig);
 *  - unknown fields (the private, assumed fields) are not part of the record.
 * Every named type is defined once, where it first appears, and referenced by full name later.
 *
 * The prefix is avsc_ because avro-c owns avro_schema_*.
 */
#ifndef LOGPROC_AVRO_SCHEMA_H
#define LOGPROC_AVRO_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <avro.h>
#include <protobuf-c/protobuf-c.h>

/* Depth of the unrolled copies of a recursive family (Struct1..Struct5). */
#define AVSC_MAX_LEVEL 5

/* ---- the derived layout: read-only, shared with avro_encode ---------------------------------- */

/* Avro type of a field (of one element, for a repeated field). */
typedef enum avsc_kind {
    AVSC_BOOL,   /* boolean */
    AVSC_INT,    /* int: int32, sint32, sfixed32, and uint32/fixed32 reinterpreted as signed */
    AVSC_LONG,   /* long: the 64-bit types; uint64/fixed64 reinterpreted as signed */
    AVSC_FLOAT,  /* float */
    AVSC_DOUBLE, /* double */
    AVSC_STRING, /* string */
    AVSC_BYTES,  /* bytes */
    AVSC_ENUM,   /* enum (avsc_field.enm) */
    AVSC_RECORD, /* ["null", record] when singular, record items when repeated */
} avsc_kind;

/* Where protobuf-c keeps the field's presence, which decides what is written. */
typedef enum avsc_presence {
    AVSC_PLAIN,    /* the value member as it is (proto3 implicit presence, a required field,
                      or a proto2 optional string or message: NULL means absent) */
    AVSC_HAS_FLAG, /* proto2 optional scalar, enum or bytes: protobuf_c_boolean has_ flag */
    AVSC_ONEOF,    /* oneof member: selected when the uint32 case member equals the field id */
    AVSC_REPEATED, /* size_t count at quantifier_offset, array pointer at offset */
} avsc_presence;

typedef struct avsc_enum_pair {
    int32_t number, index;
} avsc_enum_pair;

typedef struct avsc_enum {
    const ProtobufCEnumDescriptor *pb;
    const char *name, *space, *full_name;
    unsigned n_symbols;           /* proto values + UNRECOGNIZED */
    int32_t unrecognized;         /* index of UNRECOGNIZED (the last symbol) */
    int32_t zero_index;           /* symbol written for an absent field: the value numbered 0 */
    int32_t table_min;            /* symbol index of number n is table[n - table_min] ... */
    uint32_t table_len;           /* ... for table_min <= n < table_min + table_len */
    const int32_t *table;         /* -1 entries (gaps in the numbering) map to UNRECOGNIZED */
    unsigned n_sparse;            /* used instead of the table when the numbers span too wide */
    const avsc_enum_pair *sparse; /* a range: sorted by number */
} avsc_enum;

struct avsc_record;

typedef struct avsc_field {
    const char *name;                   /* proto name = Avro field name */
    const ProtobufCFieldDescriptor *pb; /* the source field */
    uint8_t kind;                       /* avsc_kind */
    uint8_t presence;                   /* avsc_presence */
    uint8_t pb_type;                    /* ProtobufCType, for reading the C member */
    uint32_t id;                        /* field number, compared with a oneof case */
    unsigned offset, quantifier_offset; /* into the protobuf-c struct */
    const struct avsc_record *record;   /* AVSC_RECORD */
    const avsc_enum *enm;               /* AVSC_ENUM */
} avsc_field;

typedef struct avsc_record {
    const ProtobufCMessageDescriptor *pb;
    const char *name, *space, *full_name;
    int level; /* 1..AVSC_MAX_LEVEL for a family copy, 0 otherwise */
    unsigned n_fields;
    const avsc_field *fields;
    unsigned n_cut;        /* message fields left out because they would nest deeper than */
    const avsc_field *cut; /* AVSC_MAX_LEVEL: data found in them is cut (and counted) */
    size_t max_fixed;      /* most bytes the record writes before the contents of its strings,
                              bytes, arrays and sub-records: one room check per record */
} avsc_record;

/* ---- building -------------------------------------------------------------------------------- */

typedef struct avsc_schema avsc_schema;

/*
 * Derives the schema of `root` and of every type reachable from it. Returns 0 with *out set,
 * or -1 with err naming the type and the problem: a recursive family that no single member
 * breaks, two types with the same Avro full name, or a JSON text that avro-c rejects.
 * Cost: proportional to the size of the unrolled schema (about 2 ms for
 * event.LogRequest); build once per root type and keep it. The result is immutable and may be
 * shared by threads. Free with avsc_schema_free().
 */
int avsc_schema_new(const ProtobufCMessageDescriptor *root, avsc_schema **out, char *err,
                    size_t errlen);

/* Frees the schema, its layout and its avro-c schema. NULL is a no-op. */
void avsc_schema_free(avsc_schema *s);

/* The schema as compact JSON text (NUL-terminated; *len gets its length if len is not NULL).
 * Owned by s. This is the text written into container file headers. */
const char *avsc_schema_json(const avsc_schema *s, size_t *len);

/* The same schema parsed by avro-c. Borrowed: valid while s lives (avro_schema_incref to keep). */
avro_schema_t avsc_schema_avro(const avsc_schema *s);

/* The root record of the layout (its descriptor is the root passed to avsc_schema_new). */
const avsc_record *avsc_schema_root(const avsc_schema *s);

/* A record or enum of the schema by Avro full name, or NULL. Linear; meant for tests and setup. */
const avsc_record *avsc_schema_find_record(const avsc_schema *s, const char *full_name);
const avsc_enum *avsc_schema_find_enum(const avsc_schema *s, const char *full_name);

/* Symbol index that the number `v` of the enum is written as (UNRECOGNIZED when unnamed). */
int32_t avsc_enum_index_sparse(const avsc_enum *e, int32_t v);
static inline int32_t avsc_enum_index(const avsc_enum *e, int32_t v)
{
    uint32_t i = (uint32_t)v - (uint32_t)e->table_min;
    if (i < e->table_len) return e->table[i] >= 0 ? e->table[i] : e->unrecognized;
    return e->n_sparse ? avsc_enum_index_sparse(e, v) : e->unrecognized;
}

/*
 * The Avro namespace of a proto package: the Java package of the public Promoted files
 * (event, delivery, common -> ai.promoted.proto.<pkg>), com.google.protobuf for
 * google.protobuf, otherwise the package itself (what the Avro-protobuf mapping does for a
 * file without java_package). Static storage, or `package` itself.
 */
const char *avsc_namespace_of_package(const char *package);

#endif
