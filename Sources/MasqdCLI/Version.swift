// masqd's version, written in this one place: `masqd --version` prints it, and
// Deploy/package-deb.sh reads the literal below for the Debian package's version (keep it on
// one line, in this form).

public enum MasqdVersion {
    public static let string = "0.1.0"
}
