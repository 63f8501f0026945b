#ifndef CTUN_H
#define CTUN_H

/// Opens /dev/net/tun and attaches it to the TUN interface `name` (IFF_TUN | IFF_NO_PI, plus
/// IFF_MULTI_QUEUE when `multiQueue` is non-zero). Returns the file descriptor, or -errno.
/// The descriptor is close-on-exec and non-blocking.
int ctun_open(const char *name, int multiQueue);

/// Sets the MTU of interface `name` (SIOCSIFMTU). Returns 0 or -errno.
int ctun_set_mtu(const char *name, int mtu);

/// Brings interface `name` up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP). Returns 0 or -errno.
int ctun_set_up(const char *name);

/// The largest interface name the kernel accepts (IFNAMSIZ - 1).
int ctun_max_name_length(void);

#endif
