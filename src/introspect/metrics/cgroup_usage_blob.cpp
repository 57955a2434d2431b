// The compiled cgroup walk (cgroup_usage.bpf.o), embedded so that the
// exporter is one file. VITRO_CGROUP_USAGE_BPF_OBJ is its path in the build
// tree (CMake).
asm(".pushsection .rodata.vitro_cgroup_usage_bpf, \"a\"\n"
    ".balign 8\n"
    ".global vitro_cgroup_usage_bpf_start\n"
    "vitro_cgroup_usage_bpf_start:\n"
    ".incbin \"" VITRO_CGROUP_USAGE_BPF_OBJ "\"\n"
    ".global vitro_cgroup_usage_bpf_end\n"
    "vitro_cgroup_usage_bpf_end:\n"
    ".popsection\n");
