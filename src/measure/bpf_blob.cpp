// The compiled tracer (netlat.bpf.o), embedded so that vitro is one file.
// VITRO_NETLAT_BPF_OBJ is the object's path in the build tree (CMake).
asm(".pushsection .rodata.vitro_netlat_bpf, \"a\"\n"
    ".balign 8\n"
    ".global vitro_netlat_bpf_start\n"
    "vitro_netlat_bpf_start:\n"
    ".incbin \"" VITRO_NETLAT_BPF_OBJ "\"\n"
    ".global vitro_netlat_bpf_end\n"
    "vitro_netlat_bpf_end:\n"
    ".popsection\n");
