/* LD_PRELOAD library: this process sees an AVX2-only x86 CPU (no AVX-512, AVX-VNNI, AVX512-BF16, AMX, GFNI)
 * while its code keeps running natively, so the speeds stay those of this core. Built and used by
 * benchmarks/avx2_only.sh; not part of the installed package.
 *
 * How: Linux's arch_prctl(ARCH_SET_CPUID, 0) makes the CPUID instruction fault in this thread (CPUs with
 * "cpuid_fault" in /proc/cpuinfo); the flag is inherited by threads and forked children and reset by execve (the
 * preload, passed on in the environment, sets it again). The SIGSEGV handler recognises CPUID (0F A2) at the
 * faulting instruction, runs the real one with faulting briefly off, clears the feature bits below and steps over
 * the instruction. Every library that reads CPUID after this constructor (numpy, torch's cpuinfo/oneDNN/fbgemm,
 * ONNX Runtime's MLAS, the engine's __builtin_cpu_supports) sees the masked bits. Not masked: XGETBV (it cannot be
 * trapped; XCR0 still shows the AVX-512 state enabled, and every library checks the CPUID feature bit as well),
 * the XSAVE layout leaf 0xD (XSAVE buffers are sized from it), family/model (still Zen 5), and what ld.so read
 * before this constructor ran (glibc's string functions: avx2_only.sh masks those with GLIBC_TUNABLES).
 *
 * The program's own SIGSEGV handlers (Python's faulthandler, torch's) are kept in a table by the sigaction() and
 * signal() wrappers below and called for every fault that is not a CPUID, so crashes report as before.
 *
 * BIREID_CPUID_MASK_LOG=1: at exit, print to stderr how many CPUID instructions were trapped, for which leaves. */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

/* Leaf 7 subleaf 0. EBX: AVX512 F, DQ, IFMA, PF, ER, CD, BW, VL. ECX: AVX512 VBMI, VBMI2, GFNI, AVX512 VNNI,
 * BITALG, VPOPCNTDQ. EDX: AVX512 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512-FP16, AMX-TILE, AMX-INT8. */
static const uint32_t kLeaf7Ebx = BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31);
static const uint32_t kLeaf7Ecx = BIT(1) | BIT(6) | BIT(8) | BIT(11) | BIT(12) | BIT(14);
static const uint32_t kLeaf7Edx = BIT(2) | BIT(3) | BIT(8) | BIT(22) | BIT(23) | BIT(24) | BIT(25);
/* Leaf 7 subleaf 1. EAX: AVX-VNNI, AVX512-BF16, AMX-FP16, AVX-IFMA. EDX: AVX-VNNI-INT8, AVX-NE-CONVERT,
 * AMX-COMPLEX, AVX-VNNI-INT16, AVX10 (whose leaf 0x24 is then not read). */
static const uint32_t kLeaf71Eax = BIT(4) | BIT(5) | BIT(21) | BIT(23);
static const uint32_t kLeaf71Edx = BIT(4) | BIT(5) | BIT(8) | BIT(10) | BIT(19);

static struct sigaction app_segv;  /* the program's view of the SIGSEGV disposition */
static int (*real_sigaction)(int, const struct sigaction*, struct sigaction*);
static int active;                 /* our handler is installed and CPUID faults */
static unsigned long trapped;
static uint64_t leaves_seen;       /* bit L: basic leaf L (< 64) was asked for */
static uint32_t ext_seen;          /* bit L: extended leaf 0x80000000 + L (< 32) was asked for */

static int set_cpuid_faulting(int on) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1); }

static void call_app_handler(int sig, siginfo_t* si, void* uc) {
    struct sigaction a = app_segv;
    if (a.sa_flags & SA_RESETHAND) app_segv.sa_handler = SIG_DFL;
    if (a.sa_flags & SA_SIGINFO) {
        a.sa_sigaction(sig, si, uc);
    } else if (a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN) {
        a.sa_handler(sig);
    } else if (a.sa_handler == SIG_DFL || si->si_code > 0) {
        /* Default action, as without this library: a fault re-executes and kills the process; a signal sent by
         * kill/raise is sent again and kills it once this handler returns. */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        real_sigaction(sig, &dfl, NULL);
        if (si->si_code <= 0) raise(sig);
    }
}

static void on_segv(int sig, siginfo_t* si, void* ucv) {
    ucontext_t* uc = (ucontext_t*)ucv;
    greg_t* g = uc->uc_mcontext.gregs;
    /* A CPUID fault is a general-protection fault (SI_KERNEL); the instruction at RIP was just fetched, so reading
     * its two bytes cannot fault. */
    const uint8_t* ip = (const uint8_t*)g[REG_RIP];
    if (si->si_code != SI_KERNEL || ip[0] != 0x0f || ip[1] != 0xa2) {
        call_app_handler(sig, si, ucv);
        return;
    }
    int saved_errno = errno;
    uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], a, b, c, d;
    set_cpuid_faulting(0);
    __cpuid_count(leaf, sub, a, b, c, d);
    set_cpuid_faulting(1);
    if (leaf == 7 && sub == 0) {
        b &= ~kLeaf7Ebx;
        c &= ~kLeaf7Ecx;
        d &= ~kLeaf7Edx;
    } else if (leaf == 7 && sub == 1) {
        a &= ~kLeaf71Eax;
        d &= ~kLeaf71Edx;
    }
    /* CPUID writes the low 32 bits and zeroes the upper half of each register. */
    g[REG_RAX] = a;
    g[REG_RBX] = b;
    g[REG_RCX] = c;
    g[REG_RDX] = d;
    g[REG_RIP] += 2;
    __atomic_add_fetch(&trapped, 1, __ATOMIC_RELAXED);
    if (leaf < 64) __atomic_or_fetch(&leaves_seen, (uint64_t)1 << leaf, __ATOMIC_RELAXED);
    else if (leaf - 0x80000000u < 32) __atomic_or_fetch(&ext_seen, 1u << (leaf - 0x80000000u), __ATOMIC_RELAXED);
    errno = saved_errno;
}

/* The program installs and queries its SIGSEGV handler as usual; ours stays in place and calls it. */
int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
    if (!real_sigaction) real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    if (sig != SIGSEGV || !active) return real_sigaction(sig, act, old);
    if (old) *old = app_segv;
    if (act) app_segv = *act;
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

__attribute__((constructor)) static void cpuid_mask_init(void) {
    real_sigaction = dlsym(RTLD_NEXT, "sigaction");
    struct sigaction mine;
    memset(&mine, 0, sizeof mine);
    mine.sa_sigaction = on_segv;
    mine.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&mine.sa_mask);  /* nothing runs between turning faulting off and on again */
    if (real_sigaction(SIGSEGV, &mine, &app_segv) != 0 || set_cpuid_faulting(1) != 0) {
        fprintf(stderr, "cpuid_mask: CPUID faulting is not available here (%s): the CPU is NOT masked\n",
                strerror(errno));
        real_sigaction(SIGSEGV, &app_segv, NULL);
        exit(97);
    }
    active = 1;
}

__attribute__((destructor)) static void cpuid_mask_report(void) {
    const char* log = getenv("BIREID_CPUID_MASK_LOG");
    if (!log || strcmp(log, "1") != 0) return;
    fprintf(stderr, "cpuid_mask[%d]: %lu CPUID instructions trapped; leaves", (int)getpid(), trapped);
    for (int l = 0; l < 64; l++)
        if (leaves_seen >> l & 1) fprintf(stderr, " 0x%x", l);
    for (int l = 0; l < 32; l++)
        if (ext_seen >> l & 1) fprintf(stderr, " 0x%x", 0x80000000u + l);
    fprintf(stderr, "\n");
}
