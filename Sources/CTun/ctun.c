#include "ctun.h"

#include <errno.h>
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
