// The Python helper the lab and the integration tests run inside the namespaces: ping with a
// chosen ICMP identifier, UDP echo server and client with a fixed source port, a sniffer, a
// TCP/UDP listener, a TCP connect probe and an HTTP server that logs client addresses; for the
// NAT-semantics tests also UDP and ICMP probes that report ICMP errors (IP_RECVERR, raw
// socket), a UDP "open a hole then listen" tool, many concurrent UDP flows at once, and a TCP
// bulk upload with a hashing sink.
// Only the Python standard library is used, so nothing but python3 has to be installed.

enum LabHelperScript {
    static let source = #"""
# masqd lab helper: tiny network tools with only the Python standard library.
import os, socket, struct, sys, time, select, argparse, http.server, functools, hashlib, errno, resource

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
    if a.rcvbuf: s.setsockopt(socket.SOL_SOCKET, 33, a.rcvbuf)  # SO_RCVBUFFORCE
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
        def copyfile(self, source, outputfile):
            # --rate paces the body on the server: a client's own limit (curl --limit-rate)
            # was seen to let 8 MB through in 0.5 s in CI.
            if not a.rate:
                return super().copyfile(source, outputfile)
            start, sent = time.monotonic(), 0
            while True:
                chunk = source.read(16384)
                if not chunk: return
                outputfile.write(chunk); sent += len(chunk)
                ahead = sent / a.rate - (time.monotonic() - start)
                if ahead > 0: time.sleep(ahead)
    srv = http.server.ThreadingHTTPServer((a.bind, a.port), functools.partial(H, directory=a.dir))
    out("ready"); srv.serve_forever()

IP_RECVERR, IP_MTU = 11, 14

def udpprobe(a):
    # Connected UDP socket: send, then report what comes back: a reply, ECONNREFUSED (a
    # translated port unreachable) or, with --recverr, the ICMP error itself from the error queue.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if a.sport: s.bind(("", a.sport))
    if a.recverr: s.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    if a.ttl: s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, a.ttl)
    s.connect((a.dst, a.port))
    out("local %s:%d" % s.getsockname())
    for i in range(a.tries):
        s.send(a.msg.encode())
        r, _, x = select.select([s], [], [s], a.timeout)
        if not (r or x): continue
        if a.recverr:
            try:
                data, anc, flags, _ = s.recvmsg(65535, 512, socket.MSG_ERRQUEUE)
                for level, kind, cdata in anc:
                    if level == socket.IPPROTO_IP and kind == IP_RECVERR:
                        e_errno, origin, itype, icode, _, info, _ = struct.unpack("=IBBBBII", cdata[:16])
                        offender = socket.inet_ntoa(cdata[20:24]) if len(cdata) >= 24 else "?"
                        out("icmp-error from %s type=%d code=%d errno=%s info=%d" % (offender, itype, icode, errno.errorcode.get(e_errno, e_errno), info))
                        sys.exit(0)
            except BlockingIOError:
                pass
        try:
            data = s.recv(65535); out("reply %r" % data.decode(errors="replace")); sys.exit(0)
        except ConnectionRefusedError:
            out("refused (ECONNREFUSED)"); sys.exit(0)
        except OSError as e:
            out("error %s" % errno.errorcode.get(e.errno, e.errno)); sys.exit(0)
    out("timeout: nothing came back"); sys.exit(1)

def icmpprobe(a):
    # Echo request with a chosen TTL and identifier through a raw socket; prints the ICMP error
    # (or reply) that comes back with the quoted packet decoded and every checksum verified.
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, a.ttl)
    for seq in range(1, a.tries + 1):
        payload = b"masqd-ttl-probe".ljust(32, b".")
        hdr = struct.pack("!BBHHH", 8, 0, 0, a.id, seq)
        s.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + payload), a.id, seq) + payload, (a.dst, 0))
        deadline = time.time() + a.timeout
        while True:
            left = deadline - time.time()
            if left <= 0 or not select.select([s], [], [], left)[0]: break
            data, addr = s.recvfrom(65535)
            ihl = (data[0] & 15) * 4; icmp = data[ihl:]
            t, c = icmp[0], icmp[1]
            if t in (0, 8):
                if t == 0 and struct.unpack("!H", icmp[4:6])[0] == a.id:
                    out("echo-reply from %s" % addr[0]); sys.exit(0)
                continue
            if len(icmp) < 36: continue
            inner = icmp[8:]; iihl = (inner[0] & 15) * 4
            isrc, idst = socket.inet_ntoa(inner[12:16]), socket.inet_ntoa(inner[16:20])
            if inner[9] != 1 or len(inner) < iihl + 8: continue
            it, ic, _, iid, iseq = struct.unpack("!BBHHH", inner[iihl:iihl + 8])
            ok = "ok" if csum(icmp) == 0 and csum(inner[:iihl]) == 0 else "BAD"
            out("icmp type=%d code=%d from %s quoting %s -> %s type=%d id=%d seq=%d checksums=%s" %
                (t, c, addr[0], isrc, idst, it, iid, iseq, ok))
            sys.exit(0)
    out("timeout: nothing came back"); sys.exit(1)

def udpopen(a):
    # Opens a hole: sends one datagram from --sport to DST:PORT, then prints every datagram
    # that arrives on that socket for --wait seconds.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", a.sport)); s.sendto(a.msg.encode(), (a.dst, a.port))
    out("ready sent from %s:%d" % s.getsockname())
    deadline = time.time() + a.wait
    while True:
        left = deadline - time.time()
        if left <= 0: break
        if select.select([s], [], [], left)[0]:
            data, peer = s.recvfrom(65535)
            out("udp from %s:%d %r" % (peer[0], peer[1], data.decode(errors="replace")))
    out("done")

def udpflows(a):
    # COUNT sockets, each one a UDP flow to DST:PORT with its own message; resends to the
    # unanswered ones up to --tries rounds and prints how many got their own echo back.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want: resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(want, soft), hard) if hard != resource.RLIM_INFINITY else want, hard))
    socks = []
    for i in range(a.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.bind(("", a.base + i if a.base else 0)); socks.append(s)
    ep = select.epoll(); byfd = {}
    for i, s in enumerate(socks): ep.register(s.fileno(), select.EPOLLIN); byfd[s.fileno()] = i
    answered = set(); wrong = 0
    for round in range(a.tries):
        pending = [i for i in range(a.count) if i not in answered]
        if not pending: break
        for n, i in enumerate(pending):
            try: socks[i].sendto(("flow-%d" % i).encode(), (a.dst, a.port))
            except BlockingIOError: pass
            if a.pace and n % a.pace == a.pace - 1: time.sleep(0.002)
        deadline = time.time() + a.timeout
        while len(answered) < a.count:
            left = deadline - time.time()
            if left <= 0: break
            for fd, _ in ep.poll(left):
                i = byfd[fd]
                while True:
                    try: data = socks[i].recv(65535)
                    except (BlockingIOError, ConnectionRefusedError): break
                    if data.startswith(("echo flow-%d " % i).encode()): answered.add(i)
                    else: wrong += 1
        out("round %d: %d of %d answered" % (round + 1, len(answered), a.count))
    out("answered %d of %d, wrong %d" % (len(answered), a.count, wrong))
    if a.hold: 
        out("holding"); time.sleep(a.hold)
    sys.exit(0 if len(answered) == a.count and not wrong else 1)

def tcpsink(a):
    # Accepts one connection, reads to EOF, answers "BYTES SHA256" and prints the same.
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("", a.port)); t.listen(4); out("ready")
    c, peer = t.accept(); h = hashlib.sha256(); n = 0
    while True:
        b = c.recv(1 << 20)
        if not b: break
        h.update(b); n += len(b)
    c.sendall(("%d %s\n" % (n, h.hexdigest())).encode()); c.close()
    out("received %d bytes sha256 %s from %s:%d" % (n, h.hexdigest(), peer[0], peer[1]))

def tcpupload(a):
    data = open(a.file, "rb").read()
    s = socket.create_connection((a.dst, a.port), timeout=a.timeout)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    answer = b""
    while not answer.endswith(b"\n"):
        b = s.recv(4096)
        if not b: break
        answer += b
    out("sent %d bytes sha256 %s" % (len(data), hashlib.sha256(data).hexdigest()))
    out("sink says %s" % answer.decode().strip())
    out("path mtu %d mss %d" % (s.getsockopt(socket.IPPROTO_IP, IP_MTU), s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)))

p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="cmd", required=True)
x = sub.add_parser("ping"); x.add_argument("dst"); x.add_argument("--count", type=int, default=3)
x.add_argument("--id", type=int, default=os.getpid() & 0xffff); x.add_argument("--timeout", type=float, default=2)
x.add_argument("--interval", type=float, default=0.2); x.set_defaults(f=ping)
x = sub.add_parser("udpecho"); x.add_argument("port", type=int); x.add_argument("--bind", default=""); x.add_argument("--rcvbuf", type=int, default=0); x.set_defaults(f=udpecho)
x = sub.add_parser("udpsend"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--sport", type=int, default=0)
x.add_argument("--msg", default="hello"); x.add_argument("--timeout", type=float, default=1); x.add_argument("--tries", type=int, default=3); x.set_defaults(f=udpsend)
x = sub.add_parser("sniff"); x.add_argument("iface"); x.add_argument("--outgoing", action="store_true"); x.set_defaults(f=sniff)
x = sub.add_parser("listen"); x.add_argument("port", type=int); x.set_defaults(f=listen)
x = sub.add_parser("tcpconnect"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--timeout", type=float, default=2); x.set_defaults(f=tcpconnect)
x = sub.add_parser("http"); x.add_argument("dir"); x.add_argument("port", type=int); x.add_argument("--bind", default=""); x.add_argument("--rate", type=int, default=0, help="bytes per second"); x.set_defaults(f=httpserve)
x = sub.add_parser("udpprobe"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--sport", type=int, default=0)
x.add_argument("--ttl", type=int, default=0); x.add_argument("--recverr", action="store_true"); x.add_argument("--msg", default="probe")
x.add_argument("--timeout", type=float, default=1); x.add_argument("--tries", type=int, default=3); x.set_defaults(f=udpprobe)
x = sub.add_parser("icmpprobe"); x.add_argument("dst"); x.add_argument("--ttl", type=int, default=64); x.add_argument("--id", type=int, default=os.getpid() & 0xffff)
x.add_argument("--timeout", type=float, default=1); x.add_argument("--tries", type=int, default=3); x.set_defaults(f=icmpprobe)
x = sub.add_parser("udpopen"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--sport", type=int, default=0)
x.add_argument("--msg", default="open"); x.add_argument("--wait", type=float, default=3); x.set_defaults(f=udpopen)
x = sub.add_parser("udpflows"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("--count", type=int, default=100)
x.add_argument("--base", type=int, default=0); x.add_argument("--timeout", type=float, default=2); x.add_argument("--tries", type=int, default=3)
x.add_argument("--pace", type=int, default=100); x.add_argument("--hold", type=float, default=0); x.set_defaults(f=udpflows)
x = sub.add_parser("tcpsink"); x.add_argument("port", type=int); x.set_defaults(f=tcpsink)
x = sub.add_parser("tcpupload"); x.add_argument("dst"); x.add_argument("port", type=int); x.add_argument("file")
x.add_argument("--timeout", type=float, default=60); x.set_defaults(f=tcpupload)
a = p.parse_args()
try: a.f(a)
except KeyboardInterrupt: pass
"""#
}
