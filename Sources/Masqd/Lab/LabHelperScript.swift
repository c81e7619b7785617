// The Python helper the lab and the integration tests run inside the namespaces: ping with a
// chosen ICMP identifier, UDP echo server and client with a fixed source port, a sniffer, a
// TCP/UDP listener, a TCP connect probe and an HTTP server that logs client addresses.
// Only the Python standard library is used, so nothing but python3 has to be installed.

enum LabHelperScript {
    static let source = #"""
# masqd lab helper: tiny network tools with only the Python standard library.
import os, socket, struct, sys, time, select, argparse, http.server, functools

def out(*a):
    print(*a, flush=True)

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff

def ping(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    got = 0
    for seq in range(1, a.count + 1):
        payload = struct.pack("!d", time.time()) + b"masqd-lab".ljust(48, b".")
        hdr = struct.pack("!BBHHH", 8, 0, 0, a.id, seq)
        pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + payload), a.id, seq) + payload
        t0 = time.time(); s.sendto(pkt, (a.dst, 0))
        deadline = t0 + a.timeout
        while True:
            left = deadline - time.time()
            if left <= 0 or not select.select([s], [], [], left)[0]:
                out("no reply from %s: icmp_seq=%d id=%d" % (a.dst, seq, a.id)); break
            data, addr = s.recvfrom(65535)
            ihl = (data[0] & 15) * 4
            t, c, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if t == 0 and addr[0] == a.dst and rid == a.id and rseq == seq:
                got += 1
                out("reply from %s: icmp_seq=%d id=%d time=%.2f ms" % (addr[0], seq, rid, (time.time() - t0) * 1000)); break
        if seq < a.count: time.sleep(a.interval)
    out("%d sent, %d received" % (a.count, got))
    sys.exit(0 if got == a.count else 1)

def udpecho(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.bind, a.port)); out("ready")
    while True:
        data, peer = s.recvfrom(65535)
        out("udp from %s:%d %r" % (peer[0], peer[1], data.decode(errors="replace")))
        s.sendto(b"echo " + data + (" seen-from %s:%d" % peer).encode(), peer)

def udpsend(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", a.sport))
    for i in range(a.tries):
        s.sendto(a.msg.encode(), (a.dst, a.port))
        if select.select([s], [], [], a.timeout)[0]:
            data, peer = s.recvfrom(65535)
            out("reply from %s:%d %r" % (peer[0], peer[1], data.decode(errors="replace")))
            return
    out("no reply from %s:%d" % (a.dst, a.port)); sys.exit(1)

def sniff(a):
    ETH_P_ALL = 3
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.iface, 0)); out("ready")
    names = {1: "icmp", 6: "tcp", 17: "udp"}
    while True:
        data, meta = s.recvfrom(65535)
        if meta[2] == socket.PACKET_OUTGOING and not a.outgoing: continue
        if len(data) < 34 or data[12:14] != b"\x08\x00": continue
        ip = data[14:]; ihl = (ip[0] & 15) * 4; proto = ip[9]
        src = socket.inet_ntoa(ip[12:16]); dst = socket.inet_ntoa(ip[16:20])
        frag = struct.unpack("!H", ip[6:8])[0] & 0x1fff
        d = "out" if meta[2] == socket.PACKET_OUTGOING else "in"
        if proto in (6, 17) and frag == 0 and len(ip) >= ihl + 4:
            sp, dp = struct.unpack("!HH", ip[ihl:ihl + 4])
            out("%s %s %s:%d -> %s:%d" % (d, names[proto], src, sp, dst, dp))
        elif proto == 1 and frag == 0 and len(ip) >= ihl + 8 and ip[ihl] in (0, 8):
            t, _, _, iid, seq = struct.unpack("!BBHHH", ip[ihl:ihl + 8])
            kind = "echo-request" if t == 8 else "echo-reply"
            out("%s icmp %s -> %s %s id=%d seq=%d" % (d, src, dst, kind, iid, seq))
        else:
            out("%s %s %s -> %s" % (d, names.get(proto, str(proto)), src, dst))

def listen(a):
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("", a.port)); t.listen(16)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("", a.port))
    out("ready")
    while True:
        for r in select.select([t, u], [], [])[0]:
            if r is t:
                c, peer = t.accept(); out("tcp connection from %s:%d" % peer); c.close()
            else:
                data, peer = u.recvfrom(65535); out("udp from %s:%d" % peer)

def tcpconnect(a):
    s = socket.socket(); s.settimeout(a.timeout)
    try:
        s.connect((a.dst, a.port)); out("connected %s:%d" % (a.dst, a.port))
    except ConnectionRefusedError:
        out("refused %s:%d" % (a.dst, a.port))
    except (socket.timeout, OSError) as e:
        out("no answer %s:%d (%s)" % (a.dst, a.port, e))

def httpserve(a):
    class H(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            out("http client %s: %s" % (self.client_address[0], fmt % args))
    srv = http.server.ThreadingHTTPServer((a.bind, a.port), functools.partial(H, directory=a.dir))
    out("ready"); srv.serve_forever()

p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="cmd", required=True)
x = sub.add_parser("ping"); x.add_argument("dst"); x.add_argument("--count", type=int, default=3)
x.add_argument("--id", type=int, default=os.getpid() & 0xffff); x.add_argument("--timeout", type=float, default=2)
x.add_argument("--interval", type=float, default=0.2); x.set_defaults(f=ping)
x = sub.add_parser("udpecho"); x.add_argument("port", type=int); x.add_argument("--bind", default=""); x.set_defaults(f=udpecho)
x = sub.add_parser("udpsend"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--sport", type=int, default=0)
x.add_argument("--msg", default="hello"); x.add_argument("--timeout", type=float, default=1); x.add_argument("--tries", type=int, default=3); x.set_defaults(f=udpsend)
x = sub.add_parser("sniff"); x.add_argument("iface"); x.add_argument("--outgoing", action="store_true"); x.set_defaults(f=sniff)
x = sub.add_parser("listen"); x.add_argument("port", type=int); x.set_defaults(f=listen)
x = sub.add_parser("tcpconnect"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--timeout", type=float, default=2); x.set_defaults(f=tcpconnect)
x = sub.add_parser("http"); x.add_argument("dir"); x.add_argument("port", type=int); x.add_argument("--bind", default=""); x.set_defaults(f=httpserve)
a = p.parse_args()
try: a.f(a)
except KeyboardInterrupt: pass
"""#
}
