#ifndef CTUN_H
#define CTUN_H

#include <stdint.h>

/// Opens /dev/net/tun and attaches it to the TUN interface `name` (IFF_TUN | IFF_NO_PI, plus
/// IFF_MULTI_QUEUE when `multiQueue` is non-zero and IFF_VNET_HDR when `vnetHeader` is non-zero).
/// Returns the file descriptor, or -errno. The descriptor is close-on-exec and non-blocking.
int ctun_open(const char *name, int multiQueue, int vnetHeader);

/// TUNSETVNETHDRSZ: the size of the virtio-net header before every packet (10 or 12). 0 or -errno.
int ctun_set_vnet_header_size(int fd, int size);

/// TUNSETOFFLOAD with `flags` (TUN_F_*). 0 or -errno (-EINVAL: the kernel does not know a flag).
int ctun_set_offload(int fd, unsigned int flags);

/// The TUN_F_* offload flags (USO4/USO6 are defined here for older userspace headers).
enum {
    CTUN_F_CSUM = 0x01,
    CTUN_F_TSO4 = 0x02,
    CTUN_F_TSO6 = 0x04,
    CTUN_F_TSO_ECN = 0x08,
    CTUN_F_USO4 = 0x20,
    CTUN_F_USO6 = 0x40,
};

/// Sets the MTU of interface `name` (SIOCSIFMTU). Returns 0 or -errno.
int ctun_set_mtu(const char *name, int mtu);

/// Sets the transmit queue length of interface `name` (SIOCSIFTXQLEN): how many packets the kernel
/// queues for the reader before it drops. Returns 0 or -errno.
int ctun_set_txqueuelen(const char *name, int length);

/// Brings interface `name` up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP). Returns 0 or -errno.
int ctun_set_up(const char *name);

/// The largest interface name the kernel accepts (IFNAMSIZ - 1).
int ctun_max_name_length(void);

/// An eventfd (non-blocking, close-on-exec), or -errno.
int ctun_eventfd(void);

/// Adds 1 to an eventfd counter (wakes a poll on it). 0 or -errno.
int ctun_eventfd_signal(int fd);

/// Resets an eventfd counter (after a poll said it is readable).
void ctun_eventfd_drain(int fd);

/// Names the calling thread (PR_SET_NAME; at most 15 characters are kept), for top -H and ps -L.
void ctun_set_thread_name(const char *name);

/// Acquire load and release store of a 64-bit counter shared by two threads (a ring's head or tail).
static inline uint64_t ctun_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void ctun_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t ctun_load_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/// Loads a steering program (eBPF, TUNSETSTEERINGEBPF) on the TUN device of `fd`, which has `queues`
/// queues: each packet goes to the queue its source address hashes to with `seed` (stochastic fairness
/// queueing by host). With `outside_ifindex` non-zero, packets that arrived on that interface take the
/// odd queues and all others the even ones. Loading it again (a new seed) replaces it. 0 or -errno.
int ctun_steer_by_source(int fd, uint32_t queues, uint32_t seed, uint32_t outside_ifindex);

/// An epoll descriptor (close-on-exec) watching `fds` for input; each event carries the fd's index.
/// Returns it, or -errno.
int ctun_epoll_create(const int *fds, int count);

/// Starts (`on` non-zero) or stops watching `fd` (at `index`) for input on epoll descriptor `ep`. 0 or -errno.
int ctun_epoll_watch(int ep, int fd, uint32_t index, int on);

/// The indices of the descriptors that are readable now (epoll_wait with no wait), at most `capacity`
/// (and at most 64). The count, or -errno.
int ctun_epoll_ready(int ep, uint32_t *indices, int capacity);

#endif
