#include "ctun.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int fill_ifreq(struct ifreq *ifr, const char *name) {
    memset(ifr, 0, sizeof(*ifr));
    size_t n = strlen(name);
    if (n == 0 || n >= IFNAMSIZ) return -EINVAL;
    memcpy(ifr->ifr_name, name, n);
    return 0;
}

int ctun_open(const char *name, int multiQueue, int vnetHeader) {
    struct ifreq ifr;
    int rc = fill_ifreq(&ifr, name);
    if (rc < 0) return rc;
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (multiQueue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
    if (vnetHeader) ifr.ifr_flags |= IFF_VNET_HDR;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -errno;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int ctun_set_vnet_header_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size) < 0 ? -errno : 0;
}

int ctun_set_offload(int fd, unsigned int flags) {
    return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

static int with_socket(unsigned long request, struct ifreq *ifr) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -errno;
    int rc = ioctl(s, request, ifr) < 0 ? -errno : 0;
    close(s);
    return rc;
}

int ctun_set_mtu(const char *name, int mtu) {
    struct ifreq ifr;
    int rc = fill_ifreq(&ifr, name);
    if (rc < 0) return rc;
    ifr.ifr_mtu = mtu;
    return with_socket(SIOCSIFMTU, &ifr);
}

int ctun_set_txqueuelen(const char *name, int length) {
    struct ifreq ifr;
    int rc = fill_ifreq(&ifr, name);
    if (rc < 0) return rc;
    ifr.ifr_qlen = length;
    return with_socket(SIOCSIFTXQLEN, &ifr);
}

int ctun_set_up(const char *name) {
    struct ifreq ifr;
    int rc = fill_ifreq(&ifr, name);
    if (rc < 0) return rc;
    rc = with_socket(SIOCGIFFLAGS, &ifr);
    if (rc < 0) return rc;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    return with_socket(SIOCSIFFLAGS, &ifr);
}

int ctun_max_name_length(void) { return IFNAMSIZ - 1; }

int ctun_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int ctun_eventfd_signal(int fd) {
    uint64_t one = 1;
    return write(fd, &one, sizeof one) == sizeof one ? 0 : -errno;
}

void ctun_eventfd_drain(int fd) {
    uint64_t v;
    (void)!read(fd, &v, sizeof v);
}

void ctun_set_thread_name(const char *name) {
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

// MARK: Fair queues: a steering program that picks the TUN queue by source address, and epoll.

#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

int ctun_steer_by_source(int fd, uint32_t queues, uint32_t seed, uint32_t outside_ifindex) {
    // eBPF, socket-filter type (the packet starts at its IP header): stochastic fairness queueing by
    // source host. The source address (IPv4; IPv6: its last 32 bits) is hashed with `seed`
    // (multiplicative hashing; a new seed now and then moves colliding hosts apart). With an outside
    // interface, packets that arrived on it take the odd queues and all others the even ones, so that
    // an inside host never shares a queue with an outside one. Not IP: queue 0.
    if (queues == 0) return -EINVAL;
    uint32_t classes = (outside_ifindex != 0 && queues >= 2) ? 2 : 1;
    uint32_t buckets = queues / classes;
    struct bpf_insn prog[32];
    int n = 0;
    prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0);   // r6 = ctx (LD_ABS reads through r6)
    prog[n++] = INSN(BPF_LDX | BPF_MEM | BPF_W, 7, 1, (int16_t)offsetof(struct __sk_buff, ingress_ifindex), 0);
    prog[n++] = INSN(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, 0);      // r0 = first byte
    prog[n++] = INSN(BPF_ALU64 | BPF_RSH | BPF_K, 0, 0, 0, 4);   // the IP version
    int jv6 = n; prog[n++] = INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 6);
    int jother = n; prog[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 0, 4);
    prog[n++] = INSN(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, 12);     // IPv4 source address
    int jhash = n; prog[n++] = INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0);
    prog[jv6].off = (int16_t)(n - jv6 - 1);
    prog[n++] = INSN(BPF_LD | BPF_ABS | BPF_W, 0, 0, 0, 20);     // IPv6 source address, bytes 12-15
    prog[jhash].off = (int16_t)(n - jhash - 1);
    prog[n++] = INSN(BPF_ALU | BPF_XOR | BPF_K, 0, 0, 0, (int32_t)seed);
    prog[n++] = INSN(BPF_ALU | BPF_MUL | BPF_K, 0, 0, 0, (int32_t)0x9E3779B1u);
    prog[n++] = INSN(BPF_ALU | BPF_RSH | BPF_K, 0, 0, 0, 16);
    prog[n++] = INSN(BPF_ALU | BPF_MOD | BPF_K, 0, 0, 0, (int32_t)buckets);
    if (classes == 2) {
        prog[n++] = INSN(BPF_ALU | BPF_LSH | BPF_K, 0, 0, 0, 1);
        prog[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 7, 0, 1, (int32_t)outside_ifindex);
        prog[n++] = INSN(BPF_ALU | BPF_OR | BPF_K, 0, 0, 0, 1);
    }
    prog[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    prog[jother].off = (int16_t)(n - jother - 1);
    prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);   // queue 0
    prog[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    static const char license[] = "GPL";
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uint64_t)(uintptr_t)prog;
    attr.insn_cnt = (uint32_t)n;
    attr.license = (uint64_t)(uintptr_t)license;
    int prog_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
    if (prog_fd < 0) return -errno;
    int rc = ioctl(fd, TUNSETSTEERINGEBPF, &prog_fd) < 0 ? -errno : 0;
    close(prog_fd);  // the device keeps its own reference
    return rc;
}

int ctun_epoll_create(const int *fds, int count) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -errno;
    for (int i = 0; i < count; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data = { .u32 = (uint32_t)i } };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            int e = errno;
            close(ep);
            return -e;
        }
    }
    return ep;
}

int ctun_epoll_watch(int ep, int fd, uint32_t index, int on) {
    struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data = { .u32 = index } };
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int ctun_epoll_ready(int ep, uint32_t *indices, int capacity) {
    struct epoll_event evs[64];
    if (capacity > 64) capacity = 64;
    int n = epoll_wait(ep, evs, capacity, 0);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) indices[i] = evs[i].data.u32;
    return n;
}
