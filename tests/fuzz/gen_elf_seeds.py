#!/usr/bin/env python3
"""gen_elf_seeds.py — writes the seed corpus of the `elf` fuzz harness.

The real guest kernel (guest/) is ~200 KB, mostly code the loader never
interprets; fuzzing it would spend the time mutating instructions. These are
a few hundred bytes each and hold exactly what the loader checks: an ELF64
x86-64 ET_EXEC header, identity-placed PT_LOAD segments, section headers with
a name table, a symbol table and a `.apfsim_contract` section whose every
field passes sim/loader/elf_loader.c (layout from guest/include/apfsim_boot.h).
Variants differ in the parts a mutation should start from (no symbols, many
symbols, bss-only data, three segments, ...), plus a few that each break one
rule, so the error paths have seeds too.

Usage: gen_elf_seeds.py OUT_DIR   (tests/fuzz/corpus/elf; deterministic output)
"""
import os
import struct
import sys

PAGE = 0x1000
CONTRACT_MAGIC = 0x544341525443464B
BOOT_VERSION = 2
CR0, CR4, EFER = 0x80010033, 0x20, 0x500
PROC_STATS_BYTES, VCPU_STATS_BYTES = 192, 256

PT_LOAD, PT_NOTE, PT_INTERP = 1, 4, 3
PF_X, PF_W, PF_R = 1, 2, 4
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 1, 2, 3, 8
STT_NOTYPE, STT_OBJECT, STT_FUNC = 0, 1, 2
STB_LOCAL, STB_GLOBAL = 0, 1


def contract(**over):
    c = dict(magic=CONTRACT_MAGIC, version=BOOT_VERSION, size=0x100, boot_info_gpa=0x1000,
             boot_info_bytes=0x1000, boot_cr3=0x102000, boot_map_bytes=0x1000000,
             boot_gdt_gpa=0x101000, boot_gdt_limit=23, boot_cs=8, boot_ds=16,
             boot_stacks_gpa=0x103000, boot_stack_bytes=0x1000, max_vcpus=2, max_processes=4,
             image_start=0x100000, image_end=0x108000, user_text_start=0x100800,
             user_text_end=0x100900, proc_stats_gpa=0x105000, vcpu_stats_gpa=0x106000,
             cr0=CR0, cr4=CR4, efer=EFER)
    c.update(over)
    b = struct.pack("<QIIQQQQQHHHHQQIIQQQQQQQQQ", c["magic"], c["version"], c["size"],
                    c["boot_info_gpa"], c["boot_info_bytes"], c["boot_cr3"], c["boot_map_bytes"],
                    c["boot_gdt_gpa"], c["boot_gdt_limit"], c["boot_cs"], c["boot_ds"], 0,
                    c["boot_stacks_gpa"], c["boot_stack_bytes"], c["max_vcpus"],
                    c["max_processes"], c["image_start"], c["image_end"], c["user_text_start"],
                    c["user_text_end"], c["proc_stats_gpa"], c["vcpu_stats_gpa"], c["cr0"],
                    c["cr4"], c["efer"])
    return b + bytes(0x100 - len(b))


class Image:
    """Lays out: ELF header, program headers, segment bytes, sections' bytes,
    section headers last."""

    def __init__(self):
        self.segments = []  # (vaddr, data, memsz, flags)
        self.sections = []  # (name, type, addr, data, link, entsize, flags)
        self.entry = 0x100000
        self.extra_phdrs = []

    def build(self, with_sections=True):
        ehsize, phentsize, shentsize = 64, 56, 64
        nph = len(self.segments) + len(self.extra_phdrs)
        off = ehsize + nph * phentsize
        blob = bytearray()
        seg_offsets = []
        for vaddr, data, memsz, flags in self.segments:
            pad = (vaddr - off) % 16  # keep offsets congruent-ish, small
            off += pad
            blob += bytes(pad)
            seg_offsets.append(off)
            blob += data
            off += len(data)
        # section names
        names = b"\0"
        name_off = {}
        for s in self.sections + [(".shstrtab",)]:
            name_off[s[0]] = len(names)
            names += s[0].encode() + b"\0"
        sec_offsets = []
        for s in self.sections:
            sec_offsets.append(off)
            blob += s[3]
            off += len(s[3])
        shstr_off = off
        blob += names
        off += len(names)
        pad = (-off) % 8
        blob += bytes(pad)
        off += pad
        shoff = off if with_sections else 0
        shnum = len(self.sections) + 2 if with_sections else 0
        shstrndx = shnum - 1 if with_sections else 0
        eh = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
        eh += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, self.entry, ehsize if nph else 0, shoff, 0,
                          ehsize, phentsize, nph, shentsize, shnum, shstrndx)
        ph = b""
        for (vaddr, data, memsz, flags), o in zip(self.segments, seg_offsets):
            ph += struct.pack("<IIQQQQQQ", PT_LOAD, flags, o, vaddr, vaddr, len(data), memsz, PAGE)
        for p in self.extra_phdrs:
            ph += p
        out = bytearray(eh + ph) + blob
        if with_sections:
            sh = bytes(shentsize)
            index = {s[0]: i + 1 for i, s in enumerate(self.sections)}
            for s, o in zip(self.sections, sec_offsets):
                name, typ, addr, data, link, entsize, flags = s
                link_i = index.get(link, 0) if isinstance(link, str) else link
                info = 1 if typ == SHT_SYMTAB else 0
                size = len(data)
                sh += struct.pack("<IIQQQQIIQQ", name_off[name], typ, flags, addr, o, size, link_i,
                                  info, 8, entsize)
            sh += struct.pack("<IIQQQQIIQQ", name_off[".shstrtab"], SHT_STRTAB, 0, 0, shstr_off,
                              len(names), 0, 0, 1, 0)
            out += sh
        return bytes(out)


def symtab(symbols):
    """symbols: (name, addr, size, type, bind) -> (symtab bytes, strtab bytes)"""
    strtab = b"\0"
    tab = bytes(24)  # null symbol
    for name, addr, size, typ, bind in symbols:
        off = len(strtab)
        strtab += name.encode() + b"\0"
        tab += struct.pack("<IBBHQQ", off, (bind << 4) | typ, 0, 1, addr, size)
    return tab, strtab


TEXT = bytes([0xF4, 0xEB, 0xFD]) + bytes(0x3D)  # hlt; jmp .-1
GDT = bytes(8) + struct.pack("<Q", 0x00AF9A000000FFFF) + struct.pack("<Q", 0x00CF92000000FFFF)

BASE_SYMBOLS = [
    ("kernel_entry", 0x100000, 3, STT_FUNC, STB_GLOBAL),
    ("asm_exc_page_fault", 0x100010, 0x20, STT_FUNC, STB_GLOBAL),
    ("nmi_repeat", 0x100018, 0, STT_NOTYPE, STB_LOCAL),
    ("boot_gdt", 0x101000, 24, STT_OBJECT, STB_GLOBAL),
    ("__image_start", 0x100000, 0, STT_NOTYPE, STB_GLOBAL),
    ("user_main", 0x100800, 0x40, STT_FUNC, STB_GLOBAL),
]


def base_image(symbols=BASE_SYMBOLS, contract_bytes=None, data_memsz=0x7000, contract_in_segment=False):
    img = Image()
    img.segments.append((0x100000, TEXT, 0x1000, PF_R | PF_X))
    img.segments.append((0x101000, GDT, data_memsz, PF_R | PF_W))
    cb = contract_bytes if contract_bytes is not None else contract()
    img.sections.append((".text", SHT_PROGBITS, 0x100000, b"", 0, 0, 6))
    img.sections.append((".apfsim_contract", SHT_PROGBITS, 0x100f00 if contract_in_segment else 0, cb, 0, 0, 2))
    if symbols is not None:
        st, ss = symtab(symbols)
        img.sections.append((".symtab", SHT_SYMTAB, 0, st, ".strtab", 24, 0))
        img.sections.append((".strtab", SHT_STRTAB, 0, ss, 0, 0, 0))
    return img


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "elf")
    os.makedirs(out, exist_ok=True)
    seeds = {}
    seeds["valid-minimal.elf"] = base_image().build()
    seeds["valid-stripped.elf"] = base_image(symbols=None).build()
    many = [("f%02d" % i, 0x100000 + 8 * i, 8, STT_FUNC, STB_GLOBAL) for i in range(24)]
    many += [("dup", 0x100020, 4, STT_FUNC, STB_LOCAL), ("dup", 0x100040, 4, STT_FUNC, STB_LOCAL),
             ("0x100010", 0x100010, 0, STT_NOTYPE, STB_LOCAL), ("a+b", 0x100030, 0, STT_NOTYPE, STB_LOCAL),
             ("$x", 0x100000, 0, STT_NOTYPE, STB_LOCAL), ("outside", 0x900000, 4, STT_OBJECT, STB_GLOBAL)]
    seeds["valid-many-symbols.elf"] = base_image(symbols=many).build()
    three = base_image()
    three.segments.append((0x400000, TEXT, 0x1000, PF_R | PF_X))
    three.sections[1] = (".apfsim_contract", SHT_PROGBITS, 0, contract(image_end=0x401000, user_text_start=0x400000,
                                                                      user_text_end=0x400100), 0, 0, 2)
    seeds["valid-three-segments.elf"] = three.build()
    seeds["valid-contract-in-rodata.elf"] = base_image(contract_in_segment=True).build()
    # Each of these breaks one rule.
    seeds["bad-no-sections.elf"] = base_image().build(with_sections=False)
    seeds["bad-contract-magic.elf"] = base_image(contract_bytes=contract(magic=1)).build()
    seeds["bad-stacks-outside.elf"] = base_image(contract_bytes=contract(boot_stacks_gpa=0x107800)).build()
    seeds["bad-image-end.elf"] = base_image(contract_bytes=contract(image_end=0x107000)).build()
    overlap = base_image()
    overlap.segments.append((0x101800, TEXT, 0x100, PF_R))
    seeds["bad-overlap.elf"] = overlap.build()
    interp = base_image()
    interp.extra_phdrs.append(struct.pack("<IIQQQQQQ", PT_INTERP, PF_R, 0, 0, 0, 0, 0, 1))
    seeds["bad-interp.elf"] = interp.build()
    seeds["bad-truncated.elf"] = base_image().build()[:200]
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
