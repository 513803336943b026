/* Resident memory of a small program that opens and connects one socket.
 *
 * Run with and without the shim preloaded; the difference is the shim's
 * footprint (its code and data pages actually touched, its heap).
 *
 * usage: rss ADDRESS PORT
 * prints: rss_kb=<VmRSS> anon_kb=<RssAnon> file_kb=<RssFile>
 *         shim_mapped=<1 if a libmifshim mapping is present, else 0>
 */
#include "common.h"

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        die("/proc/self/status");
    char line[256];
    long v = -1;
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Whether libmifshim is mapped into this process: lets the script check that the
 * "with" variant really has the shim and the "without" variant really does not. */
static int shim_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        die("/proc/self/maps");
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, "libmifshim") != NULL;
    fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ADDRESS PORT\n", argv[0]);
        return 2;
    }
    struct sockaddr_storage dst;
    socklen_t len = parse_addr(argv[1], argv[2], &dst);
    int fd = socket(dst.ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (const struct sockaddr *)&dst, len) != 0)
        die("connect");
    printf("rss_kb=%ld\nanon_kb=%ld\nfile_kb=%ld\n", status_kb("VmRSS"), status_kb("RssAnon"),
           status_kb("RssFile"));
    printf("shim_mapped=%d\n", shim_mapped());
    close(fd);
    return 0;
}
