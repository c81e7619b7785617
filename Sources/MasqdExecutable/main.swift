// The `masqd` binary: the command tree with the built-in helpers. A package that wants its
// own helpers in masqd has a main.swift like this one that passes them (Examples/).

import MasqdCLI

MasqdMain.main(helpers: [])
