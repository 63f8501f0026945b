#!/usr/bin/env python3
"""Writes the seed corpus under Fuzz/corpus/<target>/: real packets from the test fixtures (the hex in
Tests/NATWireTests/Fixtures.swift and Tests/STUNTests/Support.swift), flows built here with the test
suites' addresses, the TOML files of Examples/, and control requests from the README. Run it again after
a fixture changes: python3 Fuzz/make-corpus.py (the files are named by content, so it only adds)."""
import hashlib, ipaddress, os, re, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Fuzz", "corpus")

def write(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)

def hex_fixtures(path):
    text = open(os.path.join(ROOT, path)).read()
    out = {}
    for name, body in re.findall(r'static let (\w+)\s*=\s*hex\("""(.*?)"""\)', text, re.S):
        out[name] = bytes.fromhex("".join(body.split()))
    return out

# --- packet builders (RFC 1071 checksums) -------------------------------------------------------------
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def a4(s): return ipaddress.IPv4Address(s).packed
def a6(s): return ipaddress.IPv6Address(s).packed

def ipv4(src, dst, proto, payload, ident=0x1234, flags_off=0x4000, ttl=64):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_off, ttl, proto, 0, a4(src), a4(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload

def l4sum4(src, dst, proto, seg): return csum(a4(src) + a4(dst) + struct.pack("!BBH", 0, proto, len(seg)) + seg)
def l4sum6(src, dst, nh, seg): return csum(a6(src) + a6(dst) + struct.pack("!IxxxB", len(seg), nh) + seg)

def udp(sp, dp, payload): return struct.pack("!HHHH", sp, dp, 8 + len(payload), 0) + payload
def tcp(sp, dp, flags, seq=1000, ack=0, payload=b"", mss=None):
    opts = struct.pack("!BBH", 2, 4, mss) if mss else b""
    return struct.pack("!HHIIBBHHH", sp, dp, seq, ack, (20 + len(opts)) // 4 << 4, flags, 65535, 0, 0) + opts + payload
def with_sum(seg, off, value): return seg[:off] + struct.pack("!H", value) + seg[off + 2:]

def udp4(src, sp, dst, dp, payload=b"hello"):
    s = udp(sp, dp, payload); return ipv4(src, dst, 17, with_sum(s, 6, l4sum4(src, dst, 17, s)))
def tcp4(src, sp, dst, dp, flags, **kw):
    s = tcp(sp, dp, flags, **kw); return ipv4(src, dst, 6, with_sum(s, 16, l4sum4(src, dst, 6, s)))
def icmp4(src, dst, typ, code, rest, body):
    m = struct.pack("!BBHI", typ, code, 0, rest) + body; return ipv4(src, dst, 1, with_sum(m, 2, csum(m)), flags_off=0)
def echo4(src, dst, ident, seq=1): return icmp4(src, dst, 8, 0, ident << 16 | seq, b"ping-payload")

def ipv6(src, dst, nh, payload, hop=64):
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), nh, hop, a6(src), a6(dst)) + payload
def udp6(src, sp, dst, dp, payload=b"hello"):
    s = udp(sp, dp, payload); return ipv6(src, dst, 17, with_sum(s, 6, l4sum6(src, dst, 17, s)))
def tcp6(src, sp, dst, dp, flags, **kw):
    s = tcp(sp, dp, flags, **kw); return ipv6(src, dst, 6, with_sum(s, 16, l4sum6(src, dst, 6, s)))
def icmp6(src, dst, typ, code, rest, body):
    m = struct.pack("!BBHI", typ, code, 0, rest) + body; return ipv6(src, dst, 58, with_sum(m, 2, l4sum6(src, dst, 58, m)))
def frag6(src, dst, nh, chunk, offset, more, ident=0xdeadbeef):
    return ipv6(src, dst, 44, struct.pack("!BBHI", nh, 0, offset | (1 if more else 0), ident) + chunk)

def records(*steps):
    """Records for the engine targets: (control, packet) pairs; control bits 0-2 advance the clock."""
    return b"".join(struct.pack("!BH", c, len(p)) + p for c, p in steps)

SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08

def virtio(flags=0, gso=0, hdr_len=0, gso_size=0, csum_start=0, csum_off=0):
    return struct.pack("<BBHHHH", flags, gso, hdr_len, gso_size, csum_start, csum_off)

wire = hex_fixtures("Tests/NATWireTests/Fixtures.swift")
stun = hex_fixtures("Tests/STUNTests/Support.swift")

# --- fuzz-wire, fuzz-virtio ---------------------------------------------------------------------------
for p in wire.values():
    write("fuzz-wire", p)
    write("fuzz-virtio", virtio() + p)
big4 = tcp4("100.64.0.2", 40000, "203.0.113.2", 80, ACK | PSH, payload=bytes(range(256)) * 12)
write("fuzz-virtio", virtio(1, 1, 40, 1000, 20, 16) + big4)
write("fuzz-virtio", virtio(1, 0x81, 40, 1448, 20, 16) + big4)
big6u = udp6("2001:db8::1", 5000, "2001:db8::2", 5001, bytes(range(256)) * 10)
write("fuzz-virtio", virtio(1, 5, 48, 1200, 40, 6) + big6u)
write("fuzz-virtio", virtio(1, 0, 0, 0, 20, 6) + udp4("100.64.0.2", 1, "203.0.113.2", 2))

# --- fuzz-napt44: configuration byte, then records ----------------------------------------------------
C, S, P, R, H = "100.64.0.2", "203.0.113.2", "198.51.100.1", "100.64.0.3", "100.64.0.9"
out_udp = udp4(C, 40000, S, 53)
in_udp = udp4(S, 53, P, 40000, b"answer")
flows = [
    records((0, out_udp), (0, in_udp), (5, in_udp), (7, in_udp)),
    records((0, tcp4(C, 40001, S, 80, SYN, mss=1460)), (0, tcp4(S, 80, P, 40001, SYN | ACK, seq=5000, ack=1001)),
            (0, tcp4(C, 40001, S, 80, ACK, seq=1001, ack=5001)), (3, tcp4(C, 40001, S, 80, FIN | ACK, seq=1001, ack=5001)),
            (0, tcp4(S, 80, P, 40001, FIN | ACK, seq=5001, ack=1002)), (6, tcp4(S, 80, P, 40001, ACK, seq=5002, ack=1002))),
    records((0, echo4(C, S, 0x4242)), (0, icmp4(S, P, 0, 0, 0x4242 << 16 | 1, b"ping-payload"))),
    records((0, out_udp), (0, icmp4(S, P, 3, 3, 0, udp4(P, 40000, S, 53)[:28]))),
    records((0, out_udp), (0, icmp4(C, S, 11, 0, 0, udp4(S, 53, C, 40000)[:28]))),
    records((0, ipv4(C, S, 17, udp(40002, 53, b"A" * 24)[:16], ident=7, flags_off=0x2000)),
            (0, ipv4(C, S, 17, b"B" * 16, ident=7, flags_off=2))),
    records((0, ipv4(C, S, 17, b"B" * 16, ident=8, flags_off=2)),
            (0, ipv4(C, S, 17, udp(40003, 53, b"A" * 24)[:16], ident=8, flags_off=0x2000))),
    records((0, out_udp), (0, udp4(R, 41000, P, 40000))),
    records((0, tcp4(S, 5555, P, 8080, SYN)), (0, tcp4("100.64.0.10", 80, S, 5555, SYN | ACK))),
    records((0, tcp4(S, 5555, P, 9999, SYN)), (6, tcp4(S, 5555, P, 9999, SYN))),
    records((0, echo4(S, P, 7)), (0, udp4(H, 1234, S, 53)), (0, udp4(S, 53, "198.51.100.9", 1234))),
    records((8, udp4(C, 40000, S, 53)), (0x28, udp4(C, 40000, S, 53)), (0x20, udp4(C, 40001, S, 53)),
            (0x30, in_udp), (0x30, udp4(S, 53, P, 40001))),
]
for i, f in enumerate(flows):
    for variant in (0, 0x1C if i % 2 else 0x13, 0xFF):
        write("fuzz-napt44", bytes([variant]) + f)

# --- NAT64: records -----------------------------------------------------------------------------------
def nat64_flows(h6, s6, s4, v4_of_h6):
    d = 0xE000
    return [
        records((0, udp6(h6, 5000, s6, 53)), (0, udp4(s4, 53, v4_of_h6, 5000, b"answer"))),
        records((0, tcp6(h6, 5001, s6, 80, SYN, mss=1440)), (0, tcp4(s4, 80, v4_of_h6, 5001, SYN | ACK, seq=9, ack=1001)),
                (0, tcp6(h6, 5001, s6, 80, ACK, seq=1001, ack=10)), (6, tcp6(h6, 5001, s6, 80, FIN | ACK, seq=1001, ack=10))),
        records((0, icmp6(h6, s6, 128, 0, 0x4242 << 16 | 1, b"ping-payload")),
                (0, icmp4(s4, v4_of_h6, 0, 0, 0x4242 << 16 | 1, b"ping-payload"))),
        records((0, udp6(h6, 5002, s6, 53)), (0, icmp4("203.0.113.1", v4_of_h6, 3, 4, 1400, udp4(v4_of_h6, 5002, s4, 53)[:28]))),
        records((0, udp4(s4, 53, v4_of_h6, 5003)), (0, icmp6(h6, s6, 1, 4, 0, udp6(s6, 53, h6, 5003)[:48]))),
        records((0, frag6(h6, s6, 17, udp6(h6, 5004, s6, 53, b"F" * 40)[40:64], 0, True)),
                (0, frag6(h6, s6, 17, udp6(h6, 5004, s6, 53, b"F" * 40)[64:], 24, False))),
        records((0, ipv4(s4, v4_of_h6, 17, udp(53, 5005, b"G" * 32)[:24], ident=9, flags_off=0x2000)),
                (0, ipv4(s4, v4_of_h6, 17, b"G" * 16, ident=9, flags_off=3))),
        records((0, udp6(h6, 5006, s6, 53, b"x" * 1400)), (0, udp4(s4, 53, v4_of_h6, 5006, b"y" * 1472))),
        records((0, icmp6(h6, s6, 128, 0, 7, b"")), (7, udp6(h6, 5007, s6, 53)), (5, udp4(s4, 53, v4_of_h6, 5007))),
    ]
for f in nat64_flows("2001:db8:6::5", "64:ff9b::192.0.2.33", "192.0.2.33", "198.51.100.5") + [
        records((0, udp6("2001:db8:6::5", 1, "2001:db8:6::6", 2)))]:
    write("fuzz-nat64-siit", f)
for f in nat64_flows("2001:db8:1::a", "2001:db8:64::cb00:7102", "203.0.113.2", "192.0.2.1") + \
         nat64_flows("2001:db8:1::6", "2001:db8:64::cb00:7102", "203.0.113.2", "192.0.2.6"):
    write("fuzz-nat64-pool", f)
for f in nat64_flows("2001:db8:6::5", "64:ff9b::192.0.2.33", "192.0.2.33", "198.51.100.64") + [
        records((0, tcp4("192.0.2.33", 4444, "198.51.100.64", 8080, SYN)), (0, tcp6("2001:db8:6::5", 80, "64:ff9b::192.0.2.33", 4444, SYN | ACK))),
        records((0, tcp4("192.0.2.33", 4444, "198.51.100.65", 1000, SYN)), (7, tcp4("192.0.2.33", 4444, "198.51.100.65", 1000, SYN)))]:
    write("fuzz-nat64-stateful", f)
for p in wire.values():
    write("fuzz-nat64-siit", records((0, p)))

# --- fuzz-nat64-superpacket: virtio header + IPv6 super-packet ----------------------------------------
h6, s6 = "2001:db8:6::5", "64:ff9b::192.0.2.33"
for gso, n in ((1000, 3000), (1400, 4200), (1200, 2500), (1220, 2450)):
    t = tcp6(h6, 5000, s6, 80, ACK | PSH, payload=bytes(i & 0xFF for i in range(n)))
    write("fuzz-nat64-superpacket", virtio(1, 4, 60, gso, 40, 16) + t)
    u = udp6(h6, 5000, s6, 53, bytes(i & 0xFF for i in range(n)))
    write("fuzz-nat64-superpacket", virtio(1, 5, 48, gso, 40, 6) + u)

# --- fuzz-config: the example files -------------------------------------------------------------------
ex = os.path.join(ROOT, "Examples")
for name in sorted(os.listdir(ex)):
    if name.endswith(".toml"):
        write("fuzz-config", open(os.path.join(ex, name), "rb").read())

# --- fuzz-control: the README's requests --------------------------------------------------------------
for line in ['{"command":"status"}', '{"command":"stats"}', '{"command":"sessions","protocol":"udp"}',
             '{"command":"sessions","protocol":"tcp","inside":"100.64.0.2","remote":"203.0.113.2:443","limit":5}',
             '{"command":"sessions","outside":"[2001:db8::1]:80"}', '{"command":"forwards.list"}',
             '{"command":"forwards.add","protocol":"tcp","outside":"198.51.100.1:8080","inside":"100.64.0.2:80","lifetime":3600,"description":"web"}',
             '{"command":"forwards.remove","protocol":"tcp","outside":"198.51.100.1:8080"}',
             '{"command":"forwards.remove","protocol":"udp","outside":"198.51.100.1:5000-5009"}',
             '{"command":"reservations"}', '{"command":"reload"}', '{"command":"nope"}']:
    write("fuzz-control", line)

# --- fuzz-stun: the RFC 5769 vectors, framing, text ---------------------------------------------------
for p in stun.values():
    write("fuzz-stun", p)
vals = list(stun.values())
write("fuzz-stun", vals[0] + vals[-1])
for t in ["2001::060d:c633:6401", "2001::d0d:c633:6401", "192.0.2.1:3478", "[2001:db8::1]:3478", "stun.example:19302", "2001:db8::1"]:
    write("fuzz-stun", t)
print("corpus written under", OUT, file=sys.stderr)
