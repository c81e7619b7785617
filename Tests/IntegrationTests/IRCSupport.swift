import Foundation
import Masqd
import MasqdLab
import MasqdShell
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Helpers for IRCTests: an ngircd running in the server namespace with its own
/// configuration, and a tiny IRC client (Python standard library only) written into the
/// topology's work directory. The client plays either side of a DCC: the inside user
/// ("alice", on h1) who offers a file or a chat and serves it on its own address, and the
/// outside user ("bob", on the far host) who reads the offer the server relays, dials the
/// endpoint it names and reports what it saw, byte for byte.
enum IRCLab {
    static let port = 6667
    static let serverName = "irc.test"
    /// 192.0.2.10 as the 32-bit decimal integer DCC uses.
    static let host1Integer: UInt32 = 3_221_225_994
    /// 203.0.113.1 as the 32-bit decimal integer DCC uses.
    static let wanInteger: UInt32 = 3_405_803_777

    /// The IRC tests need ngircd besides what every integration test needs. A missing one is
    /// a failure with the package to install, never a skip.
    static func requireTools() throws {
        guard Shell.which("ngircd") != nil else {
            throw IntegrationFailure("the IRC tests need ngircd (apt-get install -y ngircd)")
        }
    }

    /// "a.b.c.d" as the 32-bit integer a DCC offer carries.
    static func integer(_ dotted: String) -> UInt32? {
        let parts = dotted.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 4, parts.allSatisfy({ $0 < 256 }) else { return nil }
        return parts.reduce(0) { $0 << 8 | $1 }
    }

    // MARK: the server

    /// ngircd in the foreground (`-n`) in `node`'s namespace, listening on `bind`:`port`
    /// only, with a configuration of its own (no PAM, no DNS or ident lookups, CTCP relayed
    /// as sent, no connection limits). Waits until it listens.
    static func startServer(_ lab: LabTopology, on node: LabTopology.Node = .server,
                            bind: String = LabTopology.serverAddress, port: Int = IRCLab.port,
                            name: String = "ngircd") throws -> BackgroundProcess {
        guard let ngircd = Shell.which("ngircd") else { throw IntegrationFailure("ngircd not found (apt-get install -y ngircd)") }
        let configPath = lab.workDir + "/\(name).conf"
        // ngircd drops root for "nobody" before it writes its PID file; it includes every
        // file of IncludeDir (the system's /etc/ngircd/conf.d by default): an empty one here.
        let runDir = lab.workDir + "/\(name)-run", includeDir = lab.workDir + "/\(name)-conf.d"
        for dir in [runDir, includeDir] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        chmod(runDir, 0o777)
        let config = """
        [Global]
        Name = \(serverName)
        Info = masqd lab IRC server
        AdminInfo1 = masqd lab
        AdminInfo2 = masqd lab
        AdminEMail = lab@irc.test
        Listen = \(bind)
        Ports = \(port)
        MotdPhrase = "masqd lab"
        PidFile = \(runDir)/\(name).pid

        [Limits]
        ConnectRetry = 60
        IdleTimeout = 0
        MaxConnections = 0
        MaxConnectionsIP = 0
        MaxJoins = 0
        MaxPenaltyTime = 0
        PingTimeout = 300
        PongTimeout = 60

        [Options]
        DNS = no
        IncludeDir = \(includeDir)
        Ident = no
        PAM = no
        ScrubCTCP = no
        RequireAuthPing = no
        MorePrivacy = no
        NoticeBeforeRegistration = no

        """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        let check = try Shell.run([ngircd, "--configtest", "-f", configPath], timeout: 10)
        guard check.succeeded else { throw IntegrationFailure("ngircd rejects its configuration: \(check.summary)") }
        let process = try lab.spawn(node, [ngircd, "-n", "-f", configPath], name: name)
        let listening = try Semantics.waitUntil(timeout: 10) {
            guard process.isRunning else { return false }
            return try lab.run(node, ["ss", "-Hltn"], timeout: 5).stdout.contains("\(bind):\(port) ")
        }
        guard listening else {
            process.stop()
            throw IntegrationFailure("ngircd did not listen on \(bind):\(port) in \(lab.namespace(node)) (status \(process.exitStatus.map(String.init) ?? "running")):\n\(process.output)")
        }
        return process
    }

    // MARK: the client

    /// Writes the client script into the work directory (once) and returns its path.
    static func clientPath(_ lab: LabTopology) throws -> String {
        let path = lab.workDir + "/ircclient.py"
        if !FileManager.default.fileExists(atPath: path) {
            try clientSource.write(toFile: path, atomically: true, encoding: .utf8)
        }
        return path
    }

    /// Starts the client with `args` in `node`'s namespace; if `waitFor` is given, waits until
    /// it prints that line (and throws with its output if it does not).
    static func startClient(_ lab: LabTopology, on node: LabTopology.Node, _ args: [String], name: String,
                            waitFor: String? = nil, timeout: Double = 15) throws -> BackgroundProcess {
        let process = try lab.spawn(node, [LabTopology.python, "-u", try clientPath(lab)] + args, name: name)
        if let waitFor, !process.waitForOutput(containing: waitFor, timeout: timeout) {
            process.stop()
            throw IntegrationFailure("\(name) (\(args.joined(separator: " "))) did not print '\(waitFor)' in \(lab.namespace(node)):\n\(process.output)")
        }
        return process
    }

    /// Waits for both to end by themselves (stops whichever does not); their exit statuses.
    static func finish(_ processes: [BackgroundProcess], timeout: Double) -> [Int32?] {
        let deadline = Date().addingTimeInterval(timeout)
        return processes.map { process in
            let status = process.waitForExit(timeout: max(0.1, deadline.timeIntervalSinceNow))
            if status == nil { process.stop() }
            return status
        }
    }

    /// A DCC offer line the outside client printed: `offer DCC SEND file.bin 3405803777 40123 200000`.
    struct Offer {
        let kind: String
        let argument: String
        let address: UInt32
        let port: Int
        let size: Int?
        init?(_ line: String) {
            let f = line.split(separator: " ").map(String.init)
            guard f.count >= 6, f[0] == "offer", f[1] == "DCC", let address = UInt32(f[4]), let port = Int(f[5]) else { return nil }
            kind = f[2]
            argument = f[3]
            self.address = address
            self.port = port
            size = f.count > 6 ? Int(f[6]) : nil
        }
        var dotted: String { [24, 16, 8, 0].map { String((address >> UInt32($0)) & 0xff) }.joined(separator: ".") }
    }

    static func offers(_ lines: [String]) -> [Offer] { lines.compactMap(Offer.init) }

    /// "name=value …" of the helper counters, for messages.
    static func helperStats(_ stats: [String: Int]) -> String { FTPLab.helperStats(stats) }

    /// Everything both sides printed, for failure messages.
    static func transcript(_ processes: [BackgroundProcess]) -> String {
        processes.map { "--- \($0.name):\n\($0.output)" }.joined(separator: "\n")
    }

    static let clientSource = #"""
# masqd lab IRC client: just enough IRC (RFC 2812) and CTCP DCC for the NAT tests.
# Standard library only. Every line sent and received is printed ("sent ...", "recv ...").
import argparse, hashlib, os, select, socket, struct, sys, time

def out(*a):
    print(*a, flush=True)

def parse(line):
    """(nick, command, params) with the trailing parameter last."""
    if line.startswith("@"):
        line = line.partition(" ")[2]
    prefix = ""
    if line.startswith(":"):
        prefix, _, line = line[1:].partition(" ")
    head, sep, trailing = line.partition(" :")
    params = head.split()
    if sep:
        params.append(trailing)
    command = params.pop(0).upper() if params else ""
    return prefix.split("!")[0], command, params

def dotted(value):
    return socket.inet_ntoa(struct.pack("!I", value))

class IRC:
    def __init__(self, server, port, nick, timeout):
        self.nick = nick
        self.buf = b""
        self.s = socket.create_connection((server, port), timeout=timeout)
        out("irc connected %s:%d -> %s:%d" % (self.s.getsockname() + self.s.getpeername()))
        self.send("NICK %s" % nick)
        self.send("USER %s 0 * :masqd lab %s" % (nick, nick))
        self.wait(lambda m: m[1] == "001", timeout)
        out("registered as %s" % nick)

    def send(self, line):
        data = line.encode("latin-1")
        self.s.sendall(data + b"\r\n")
        out("sent %r" % line)

    def readline(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no line from the IRC server in time")
            self.s.settimeout(left)
            data = self.s.recv(4096)
            if not data:
                raise EOFError("the IRC server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def wait(self, predicate, timeout):
        deadline = time.time() + timeout
        while True:
            line = self.readline(deadline)
            out("recv %r" % line)
            m = parse(line)
            if m[1] == "PING":
                self.send("PONG :%s" % (m[2][-1] if m[2] else ""))
                continue
            if m[1] == "ERROR" or m[1] in ("401", "404", "451", "433"):
                out("irc error %r" % line)
            if predicate(m):
                return m

    def message_from(self, peer, timeout, test=lambda text: True):
        """The text of the next PRIVMSG/NOTICE from `peer` that passes `test`."""
        m = self.wait(lambda m: m[1] in ("PRIVMSG", "NOTICE") and m[0] == peer and len(m[2]) >= 2 and test(m[2][-1]), timeout)
        return m[2][-1]

    def quit(self):
        try:
            self.send("QUIT :bye")
            self.s.settimeout(2)
            while self.s.recv(4096):
                pass
        except OSError:
            pass
        self.s.close()

def is_dcc(text):
    return text.startswith("\x01DCC ") and text.endswith("\x01")

def recv_line(c, timeout):
    c.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        data = c.recv(1)
        if not data:
            break
        buf += data
    return buf.decode("latin-1").rstrip("\r\n")

def listener(bind, port):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((bind, port))
    l.listen(8)
    return l

# --- the inside user: offer, then serve whoever connects ---------------------------------

def offer(a):
    l = listener(a.bind, a.port)
    irc = IRC(a.server, a.server_port, a.nick, a.timeout)
    if a.kind == "SEND":
        size = os.path.getsize(a.file)
        ctcp = "DCC SEND %s %d %d %d" % (os.path.basename(a.file), a.advertise, a.port, size)
    else:
        ctcp = "DCC CHAT chat %d %d" % (a.advertise, a.port)
    line = "PRIVMSG %s :\x01%s\x01" % (a.peer, ctcp)
    if a.split:
        # The offer in two writes, cut inside the address, a pause between them; with
        # TCP_NODELAY (unless --nagle) each write leaves at once as its own segment.
        if not a.nagle:
            irc.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cut = line.index(str(a.advertise)) + 5
        irc.s.sendall(line[:cut].encode("latin-1"))
        out("sent part %r" % line[:cut])
        time.sleep(a.split_pause)
        irc.s.sendall((line[cut:] + "\r\n").encode("latin-1"))
        out("sent part %r" % (line[cut:] + "\r\n"))
    else:
        irc.send(line)
    l.settimeout(a.timeout)
    try:
        c, peer = l.accept()
    except socket.timeout:
        out("nobody connected to %s:%d" % (a.bind, a.port))
        irc.quit()
        sys.exit(1)
    out("accepted %s:%d on %s:%d" % (peer + c.getsockname()))
    if a.kind == "SEND":
        with open(a.file, "rb") as f:
            data = f.read()
        c.sendall(data)
        # The receiver acknowledges the running total as a 32-bit big-endian number.
        c.settimeout(a.timeout)
        acked, pending = 0, b""
        while acked < len(data):
            chunk = c.recv(4096)
            if not chunk:
                break
            pending += chunk
            while len(pending) >= 4:
                acked = struct.unpack("!I", pending[:4])[0]
                pending = pending[4:]
        out("served %d bytes, acknowledged %d" % (len(data), acked))
    else:
        c.sendall(b"hello from alice inside\n")
        line = recv_line(c, a.timeout)
        out("chat received %r" % line)
    c.close()
    irc.quit()

# --- the outside user: read the relayed offer, dial it, fetch ------------------------------

def receive(a):
    irc = IRC(a.server, a.server_port, a.nick, a.timeout)
    out("ready")
    text = irc.message_from(a.peer, a.timeout, is_dcc)
    out("offer %s" % text.strip("\x01"))
    f = text.strip("\x01").split()
    kind, address, port = f[1], dotted(int(f[3])), int(f[4])
    out("dialling %s:%d" % (address, port))
    try:
        c = socket.create_connection((address, port), timeout=a.dial_timeout)
    except (OSError, socket.timeout) as e:
        out("dial failed %s:%d (%s)" % (address, port, e))
        irc.quit()
        sys.exit(1)
    out("connected %s:%d -> %s:%d" % (c.getsockname() + c.getpeername()))
    if kind == "SEND":
        size = int(f[5])
        h, got = hashlib.sha256(), 0
        c.settimeout(a.timeout)
        while got < size:
            data = c.recv(65536)
            if not data:
                break
            h.update(data)
            got += len(data)
            c.sendall(struct.pack("!I", got & 0xffffffff))
        out("received %d of %d bytes sha256 %s" % (got, size, h.hexdigest()))
    else:
        line = recv_line(c, a.timeout)
        out("chat received %r" % line)
        c.sendall(b"hello from bob outside\n")
        c.settimeout(a.timeout)
        try:
            c.recv(1)  # until alice closes
        except OSError:
            pass
    c.close()
    irc.quit()

# --- slipstreaming: offers that must not open anything --------------------------------------

def probe(address, port, timeout):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((address, port))
        s.close()
        return "connected"
    except ConnectionRefusedError:
        return "refused"
    except (socket.timeout, OSError) as e:
        return "no answer (%s)" % e

def slip_inside(a):
    """alice: listens on the bait port, receives bob's relayed offer, then sends offers that are
    not CTCP offers (the DCC is not right after " :"), and a fake HTTP request carrying one; at
    the end one real offer (the control)."""
    bait = listener(a.bind, a.port)
    control = listener(a.bind, a.control_port)
    irc = IRC(a.server, a.server_port, a.nick, a.timeout)
    out("ready")
    text = irc.message_from(a.peer, a.timeout, lambda t: "DCC" in t)
    out("relayed to me %r" % text)
    irc.send("PRIVMSG %s :relayed-seen" % a.peer)
    irc.message_from(a.peer, a.timeout, lambda t: t == "your-turn")
    bogus = "DCC SEND x %d %d 1" % (a.advertise, a.port)
    irc.send("PRIVMSG %s :hi \x01%s\x01" % (a.peer, bogus))
    irc.send("NOTICE %s :look: \x01DCC CHAT chat %d %d\x01" % (a.peer, a.advertise, a.port))
    irc.send("PRIVMSG %s :\x01ACTION waves\x01 \x01%s\x01" % (a.peer, bogus))
    # A browser made to post to the IRC port (the slipstreaming vector), its own connection.
    h = socket.create_connection((a.server, a.server_port), timeout=a.timeout)
    body = "PRIVMSG %s :\x01%s\x01\r\n" % (a.peer, bogus)
    request = "POST /form HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
        a.server, a.server_port, len(body), body)
    h.sendall(request.encode("latin-1"))
    out("sent http %r" % request)
    time.sleep(0.5)
    h.close()
    irc.send("PRIVMSG %s :done-slip" % a.peer)
    irc.message_from(a.peer, a.timeout, lambda t: t == "probe-done")
    irc.send("PRIVMSG %s :\x01DCC SEND ok.bin %d %d 1\x01" % (a.peer, a.advertise, a.control_port))
    # Log whoever reaches either listener until bob says bye.
    irc.s.setblocking(False)
    deadline = time.time() + a.timeout
    finished = False
    while time.time() < deadline and not finished:
        for r in select.select([bait, control, irc.s], [], [], 0.5)[0]:
            if r is irc.s:
                try:
                    data = irc.s.recv(4096)
                except BlockingIOError:
                    continue
                if not data or b":bye" in data:
                    finished = True
            else:
                c, peer = r.accept()
                out("accepted %s:%d on %s:%d" % (peer + c.getsockname()))
                if r is control:
                    c.sendall(b"x")
                c.close()
    irc.s.setblocking(True)
    irc.quit()

def slip_outside(a):
    """bob: sends alice an offer (relayed to her: server->client bytes), probes the bait port
    after each round, waits for the gate file, then dials the control offer."""
    irc = IRC(a.server, a.server_port, a.nick, a.timeout)
    out("ready")
    irc.send("PRIVMSG %s :\x01DCC SEND x %d %d 1\x01" % (a.peer, a.advertise, a.port))
    irc.message_from(a.peer, a.timeout, lambda t: t == "relayed-seen")
    out("probe relayed %s:%d %s" % (a.wan, a.port, probe(a.wan, a.port, a.dial_timeout)))
    irc.send("PRIVMSG %s :your-turn" % a.peer)
    while True:
        text = irc.message_from(a.peer, a.timeout)
        if text == "done-slip":
            break
        out("text from %s %r" % (a.peer, text))
    out("probe embedded %s:%d %s" % (a.wan, a.port, probe(a.wan, a.port, a.dial_timeout)))
    out("waiting for gate")
    deadline = time.time() + a.timeout
    while not os.path.exists(a.gate):
        if time.time() > deadline:
            out("no gate"); sys.exit(1)
        time.sleep(0.05)
    irc.send("PRIVMSG %s :probe-done" % a.peer)
    text = irc.message_from(a.peer, a.timeout, is_dcc)
    out("offer %s" % text.strip("\x01"))
    f = text.strip("\x01").split()
    address, port = dotted(int(f[3])), int(f[4])
    out("probe control %s:%d %s" % (address, port, probe(address, port, a.dial_timeout)))
    irc.send("PRIVMSG %s :bye" % a.peer)
    time.sleep(0.5)
    irc.quit()

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["offer", "receive", "slip-inside", "slip-outside"])
p.add_argument("--server", required=True)
p.add_argument("--server-port", type=int, default=6667)
p.add_argument("--nick", required=True)
p.add_argument("--peer", required=True)
p.add_argument("--kind", default="SEND", choices=["SEND", "CHAT"])
p.add_argument("--bind", default="")
p.add_argument("--port", type=int, default=0)
p.add_argument("--control-port", type=int, default=0)
p.add_argument("--advertise", type=int, default=0)
p.add_argument("--file", default="")
p.add_argument("--split", action="store_true")
p.add_argument("--split-pause", type=float, default=0.05)
p.add_argument("--nagle", action="store_true")
p.add_argument("--wan", default="")
p.add_argument("--gate", default="")
p.add_argument("--timeout", type=float, default=20)
p.add_argument("--dial-timeout", type=float, default=5)
a = p.parse_args()
try:
    {"offer": offer, "receive": receive, "slip-inside": slip_inside, "slip-outside": slip_outside}[a.mode](a)
except (OSError, EOFError, TimeoutError) as e:
    out("error %s: %s" % (type(e).__name__, e))
    sys.exit(1)
"""#
}
