/* res_* probe: every libc entry point that sends a DNS query itself. Prints one line
 * per answer record ("OP ADDR") or "OP h_errno=N" when the call fails.
 * usage: res A|AAAA NAME SHORT DOMAIN  (SHORT + DOMAIN == NAME, for search/querydomain) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>

/* What a program built against glibc < 2.34 links: libresolv's __res_* names. */
extern int old_res_query(const char *, int, int, unsigned char *, int);
extern int old_res_search(const char *, int, int, unsigned char *, int);
extern int old_res_send(const unsigned char *, int, unsigned char *, int);
__asm__(".symver old_res_query,__res_query@GLIBC_2.2.5");
__asm__(".symver old_res_search,__res_search@GLIBC_2.2.5");
__asm__(".symver old_res_send,__res_send@GLIBC_2.2.5");

static void show(const char *op, int n, const unsigned char *ans) {
    if (n < 0) {
        printf("%s h_errno=%d\n", op, h_errno);
        return;
    }
    ns_msg m;
    if (ns_initparse(ans, n, &m) < 0) {
        printf("%s unparsable\n", op);
        return;
    }
    int shown = 0;
    for (int i = 0; i < ns_msg_count(m, ns_s_an); i++) {
        ns_rr rr;
        char buf[64];
        if (ns_parserr(&m, ns_s_an, i, &rr) < 0)
            break;
        if (ns_rr_type(rr) == ns_t_a)
            inet_ntop(AF_INET, ns_rr_rdata(rr), buf, sizeof buf);
        else if (ns_rr_type(rr) == ns_t_aaaa)
            inet_ntop(AF_INET6, ns_rr_rdata(rr), buf, sizeof buf);
        else
            continue;
        printf("%s %s\n", op, buf);
        shown++;
    }
    if (!shown)
        printf("%s empty rcode=%d\n", op, ns_msg_getflag(m, ns_f_rcode));
}

int main(int argc, char **argv) {
    if (argc < 5)
        return 2;
    int type = strcmp(argv[1], "AAAA") == 0 ? ns_t_aaaa : ns_t_a;
    const char *name = argv[2], *shortname = argv[3], *domain = argv[4];
    unsigned char ans[4096], q[512];
    int n, ql;

    n = res_query(name, ns_c_in, type, ans, sizeof ans);
    show("query", n, ans);
    n = res_search(shortname, ns_c_in, type, ans, sizeof ans);
    show("search", n, ans);
    n = res_querydomain(shortname, domain, ns_c_in, type, ans, sizeof ans);
    show("querydomain", n, ans);
    ql = res_mkquery(ns_o_query, name, ns_c_in, type, NULL, 0, NULL, q, sizeof q);
    n = ql < 0 ? -1 : res_send(q, ql, ans, sizeof ans);
    show("send", n, ans);

    struct __res_state st;
    memset(&st, 0, sizeof st);
    if (res_ninit(&st) != 0) {
        printf("res_ninit failed\n");
        return 1;
    }
    n = res_nquery(&st, name, ns_c_in, type, ans, sizeof ans);
    show("nquery", n, ans);
    n = res_nsearch(&st, shortname, ns_c_in, type, ans, sizeof ans);
    show("nsearch", n, ans);
    n = res_nquerydomain(&st, shortname, domain, ns_c_in, type, ans, sizeof ans);
    show("nquerydomain", n, ans);
    ql = res_nmkquery(&st, ns_o_query, name, ns_c_in, type, NULL, 0, NULL, q, sizeof q);
    n = ql < 0 ? -1 : res_nsend(&st, q, ql, ans, sizeof ans);
    show("nsend", n, ans);
    res_nclose(&st);

    n = old_res_query(name, ns_c_in, type, ans, sizeof ans);
    show("old_query", n, ans);
    n = old_res_search(shortname, ns_c_in, type, ans, sizeof ans);
    show("old_search", n, ans);
    ql = res_mkquery(ns_o_query, name, ns_c_in, type, NULL, 0, NULL, q, sizeof q);
    n = ql < 0 ? -1 : old_res_send(q, ql, ans, sizeof ans);
    show("old_send", n, ans);

    n = res_query("nope.mif.test", ns_c_in, type, ans, sizeof ans);
    show("nxdomain", n, ans);
    return 0;
}
