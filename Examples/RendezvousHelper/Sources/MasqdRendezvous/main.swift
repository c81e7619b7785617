// This package's own masqd: all of masqd, plus the rendezvous helper (`--helpers rendezvous`,
// `--helper-ports rendezvous=udp:PORT`, `helpers: [rendezvous]` in a config file).

import Masqd
import MasqdCLI
import NATCore
import Rendezvous

MasqdMain.main(helpers: [
    HelperCatalog.Entry(name: "rendezvous", defaultPorts: [RendezvousHelper.defaultPort], make: { RendezvousHelper() }),
])
