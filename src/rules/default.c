/*
 * default.c - the default rule pack (rules/default.yml), embedded at build
 * time by hs_embed() in CMakeLists.txt, so nothing is read from disk at run
 * time.  The generated array ends with a zeroed entry; each file's bytes
 * are followed by a NUL.
 */
#include "rules/rules.h"

#include <string.h>

struct hs_embedded_file {
    const char *path;
    const unsigned char *data;
    size_t len;
};
extern const struct hs_embedded_file hs_embed_default_rules[];

const char *rules_default_pack(size_t *len)
{
    for (const struct hs_embedded_file *f = hs_embed_default_rules; f->path; f++) {
        if (strcmp(f->path, "default.yml") == 0) {
            if (len)
                *len = f->len;
            return (const char *)f->data;
        }
    }
    if (len)
        *len = 0;
    return "";
}

int rules_set_add_default(struct rules_set *s, struct hs_err *err)
{
    size_t len = 0;
    const char *text = rules_default_pack(&len);
    return rules_set_add_text(s, "<embedded>/default.yml", text, len, NULL, NULL, err);
}
