/* An A query for NAME sent to SERVER:53 from an unconnected UDP socket, the answer read
 * by recvfrom(2) in a build with -D_FORTIFY_SOURCE=2 (the call becomes
 * __recvfrom_chk, the buffer's size being known). Prints from=<the answer's source>. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    unsigned char q[512];
    size_t n = 0;
    const unsigned char hdr[12] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(q, hdr, sizeof hdr);
    n = sizeof hdr;
    for (const char *l = argv[2]; *l;) {
        const char *dot = strchr(l, '.');
        size_t len = dot ? (size_t)(dot - l) : strlen(l);
        q[n++] = (unsigned char)len;
        memcpy(q + n, l, len);
        n += len;
        l += len + (dot ? 1 : 0);
    }
    q[n++] = 0;
    const unsigned char tail[4] = {0, 1, 0, 1};
    memcpy(q + n, tail, 4);
    n += 4;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct timeval tv = {3, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, argv[1], &to.sin_addr);
    if (sendto(s, q, n, 0, (void *)&to, sizeof to) < 0) { perror("sendto"); return 1; }
    unsigned char a[512];
    size_t want = (size_t)atoi("512"); /* not a constant: the fortified call checks it */
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    if (recvfrom(s, a, want, 0, (void *)&from, &fl) < 0) { perror("recvfrom"); return 1; }
    char ip[64];
    inet_ntop(AF_INET, &from.sin_addr, ip, sizeof ip);
    printf("from=%s\n", ip);
    return 0;
}
