import Foundation
import Masqd
import MasqdLab
import MasqdShell

// SIPp scenarios for SIPTests, written into the test's work folder. Each UA plays SIPp's own
// G.711 capture (7 s, 236 RTP packets) to the media address the other side's SDP named, so
// media reaches a phone inside only if its SDP was rewritten and the NAT expects the media.
// <log> lines record what each side received (Contact, SDP address and port, Request-URI).
enum SIPLab {
    static let audio = "/usr/share/sip-tester/g711a.pcap"
    static let audioPackets = 236

    static func requireTools() throws {
        guard Shell.which("sipp") != nil else { throw IntegrationFailure("sipp not found (apt-get install -y sip-tester)") }
        guard FileManager.default.fileExists(atPath: audio) else { throw IntegrationFailure("\(audio) missing (package sip-tester)") }
    }

    static func write(_ scenario: String, named name: String, in lab: LabTopology) throws -> String {
        let path = lab.workDir + "/\(name).xml"
        try scenario.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// SIPp in `node`'s namespace, in the foreground, from the work folder; `-m calls`; over
    /// UDP, or TCP (`-t t1`: one connection).
    static func sipp(_ lab: LabTopology, on node: LabTopology.Node, scenario: String, remote: String?, localIP: String,
                     calls: Int, name: String, tcp: Bool = false, port: Int = 5060, service: String = "bob",
                     callID: String? = nil) throws -> BackgroundProcess {
        var argv = ["sipp", "-sf", scenario, "-i", localIP, "-p", String(port), "-mi", localIP, "-mp", "6000", "-m", String(calls),
                    "-t", tcp ? "t1" : "u1",
                    "-s", service, "-nostdin", "-timeout", "40s", "-trace_logs", "-log_file", lab.workDir + "/\(name).log",
                    "-trace_err", "-error_file", lab.workDir + "/\(name).err"]
        if let callID { argv += ["-cid_str", callID] }
        if let remote { argv.append(remote) }
        return try lab.spawn(node, argv, name: name)
    }

    /// Kamailio as registrar and proxy on `address`:5060: REGISTER saved in memory, every
    /// other request relayed to the Contact the request's user registered (404 when none),
    /// with short transaction timers so a call that cannot reach the phone fails in seconds.
    static func startKamailio(_ lab: LabTopology, address: String) throws -> BackgroundProcess {
        guard let kamailio = Shell.which("kamailio") ?? (FileManager.default.fileExists(atPath: "/usr/sbin/kamailio") ? "/usr/sbin/kamailio" : nil)
        else { throw IntegrationFailure("kamailio not found (apt-get install -y kamailio)") }
        let config = lab.workDir + "/kamailio.cfg"
        try kamailioConfig(address).write(toFile: config, atomically: true, encoding: .utf8)
        let run = lab.workDir + "/kamailio-run"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let process = try lab.spawn(.server, [kamailio, "-DD", "-E", "-f", config, "-m", "32", "-M", "4", "-Y", run, "-w", run],
                                    name: "kamailio")
        let up = try Semantics.waitUntil(timeout: 10) {
            guard process.isRunning else { return false }
            return try lab.run(.server, ["ss", "-Hlun"], timeout: 5).stdout.contains("\(address):5060 ")
        }
        guard up else {
            _ = process.stop()
            throw IntegrationFailure("kamailio did not listen on \(address):5060:\n\(process.output)")
        }
        return process
    }

    static func kamailioConfig(_ address: String) -> String {
        """
        #!KAMAILIO
        debug=2
        log_stderror=yes
        children=2
        auto_aliases=no
        listen=udp:\(address):5060
        loadmodule "tm.so"
        loadmodule "tmx.so"
        loadmodule "sl.so"
        loadmodule "maxfwd.so"
        loadmodule "usrloc.so"
        loadmodule "registrar.so"
        loadmodule "textops.so"
        loadmodule "siputils.so"
        loadmodule "xlog.so"
        loadmodule "pv.so"
        loadmodule "kex.so"
        loadmodule "corex.so"
        modparam("usrloc", "db_mode", 0)
        modparam("tm", "fr_timer", 3000)
        modparam("tm", "fr_inv_timer", 6000)
        request_route {
            if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
            if (is_method("REGISTER")) {
                xlog("L_NOTICE", "REGISTER contact $ct\\n");
                save("location");
                exit;
            }
            if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
            xlog("L_NOTICE", "$rm relayed to $ru\\n");
            t_relay();
        }

        """
    }

    /// The `<log>` lines a SIPp instance wrote.
    static func log(_ lab: LabTopology, _ name: String) -> String {
        (try? String(contentsOfFile: lab.workDir + "/\(name).log", encoding: .utf8)) ?? ""
    }

    static let sdp = """
      v=0
      o=user1 53655765 2353687637 IN IP4 [media_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8
      a=rtpmap:8 PCMA/8000
    """

    /// What a received message named: its Contact, its SDP connection address and media port.
    static let logSeen = """
        <action>
          <ereg regexp="Contact: &lt;?sip:[^@]*@([0-9.]+):([0-9]+)" search_in="msg" assign_to="contact,contact_ip,contact_port"/>
          <ereg regexp="c=IN IP4 ([0-9.]+)" search_in="body" assign_to="c,media_ip_seen"/>
          <ereg regexp="m=audio ([0-9]+)" search_in="body" assign_to="m,media_port_seen"/>
          <log message="seen contact [$contact_ip]:[$contact_port] media [$media_ip_seen]:[$media_port_seen]"/>
        </action>
    """

    /// A LAN phone calling out: INVITE with SDP, ACK, 7 s of audio, BYE.
    static let caller = """
    <?xml version="1.0" encoding="ISO-8859-1" ?>
    <scenario name="masqd caller">
      <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

    \(sdp)
      ]]></send>
      <recv response="100" optional="true"/>
      <recv response="180" optional="true"/>
      <recv response="200" rtd="true" crlf="true">
    \(logSeen)
      </recv>
      <send><![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
      ]]></send>
      <nop><action><exec play_pcap_audio="\(audio)"/></action></nop>
      <pause milliseconds="8000"/>
      <send retrans="500"><![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
      ]]></send>
      <recv response="200" crlf="true"/>
      <Reference variables="contact,c,m"/>
    </scenario>
    """

    /// Answering an INVITE just received: 180, 200 with SDP (Contact `contact`, To tag
    /// `tag`), the ACK, audio to the caller's SDP address, the BYE answered.
    static func answering(contact: String, tag: String) -> String {
        """
          <send><![CDATA[
          SIP/2.0 180 Ringing
          [last_Via:]
          [last_From:]
          [last_To:];tag=[pid]\(tag)[call_number]
          [last_Call-ID:]
          [last_CSeq:]
          Contact: <\(contact)>
          Content-Length: 0
          ]]></send>
          <send retrans="500"><![CDATA[
          SIP/2.0 200 OK
          [last_Via:]
          [last_From:]
          [last_To:];tag=[pid]\(tag)[call_number]
          [last_Call-ID:]
          [last_CSeq:]
          Contact: <\(contact)>
          Content-Type: application/sdp
          Content-Length: [len]

        \(sdp)
          ]]></send>
          <recv request="ACK" crlf="true"/>
          <nop><action><exec play_pcap_audio="\(audio)"/></action></nop>
          <recv request="BYE"/>
          <send><![CDATA[
          SIP/2.0 200 OK
          [last_Via:]
          [last_From:]
          [last_To:]
          [last_Call-ID:]
          [last_CSeq:]
          Content-Length: 0
          ]]></send>
        """
    }

    /// The far end answering calls: 180, 200 with SDP, audio to the caller's SDP address, BYE answered.
    static let answerer = """
    <?xml version="1.0" encoding="ISO-8859-1" ?>
    <scenario name="masqd answerer">
      <recv request="INVITE" crlf="true">
    \(logSeen)
      </recv>
    \(answering(contact: "sip:[local_ip]:[local_port];transport=[transport]", tag: "SIPpTag01"))
      <Reference variables="contact,c,m"/>
    </scenario>
    """

    /// A LAN phone that registers, then answers the call the registrar sends to its Contact.
    static let registeredPhone = """
    <?xml version="1.0" encoding="ISO-8859-1" ?>
    <scenario name="masqd registered phone">
      <send retrans="500"><![CDATA[
      REGISTER sip:[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:alice@[remote_ip]>;tag=[pid]reg[call_number]
      To: <sip:alice@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:alice@[local_ip]:[local_port]>
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0
      ]]></send>
      <recv response="200"/>
      <recv request="INVITE" crlf="true">
        <action>
          <ereg regexp="INVITE sip:alice@([0-9.]+):([0-9]+) SIP/2.0" search_in="msg" assign_to="ruri,ruri_ip,ruri_port"/>
          <log message="invited at [$ruri_ip]:[$ruri_port]"/>
        </action>
      </recv>
    \(answering(contact: "sip:alice@[local_ip]:[local_port]", tag: "ua"))
      <Reference variables="ruri"/>
    </scenario>
    """

    /// The registrar outside: takes the REGISTER, then calls the registered Contact (the same
    /// Call-ID: SIPp matches messages to its calls by Call-ID), audio, BYE.
    static let registrar = """
    <?xml version="1.0" encoding="ISO-8859-1" ?>
    <scenario name="masqd registrar">
      <recv request="REGISTER">
        <action>
          <ereg regexp="Contact: &lt;(sip:[^&gt;]*)&gt;" search_in="msg" check_it="true" assign_to="c,contact_uri"/>
          <log message="registered [$contact_uri]"/>
        </action>
      </recv>
      <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]reg[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <[$contact_uri]>;expires=3600
      Content-Length: 0
      ]]></send>
      <pause milliseconds="500"/>
      <send retrans="500"><![CDATA[
      INVITE [$contact_uri] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bob@[local_ip]>;tag=[pid]bob[call_number]
      To: <[$contact_uri]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:bob@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

    \(sdp)
      ]]></send>
      <recv response="100" optional="true"/>
      <recv response="180" optional="true"/>
      <recv response="200" crlf="true">
    \(logSeen)
      </recv>
      <send><![CDATA[
      ACK [$contact_uri] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bob@[local_ip]>;tag=[pid]bob[call_number]
      To: <[$contact_uri]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
      ]]></send>
      <nop><action><exec play_pcap_audio="\(audio)"/></action></nop>
      <pause milliseconds="8000"/>
      <send retrans="500"><![CDATA[
      BYE [$contact_uri] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:bob@[local_ip]>;tag=[pid]bob[call_number]
      To: <[$contact_uri]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0
      ]]></send>
      <recv response="200" crlf="true"/>
      <Reference variables="c,contact,m"/>
    </scenario>
    """

    /// RTP packets (from port 6000) a sniffer saw arriving from `source` at `destination`.
    static func rtpCount(_ sniff: BackgroundProcess, from source: String, to destination: String) -> Int {
        SniffedPacket.parse(sniff.lines).filter {
            $0.incoming && $0.proto == "udp" && $0.source == source && $0.sourcePort == 6000 && $0.destination == destination
        }.count
    }
}
