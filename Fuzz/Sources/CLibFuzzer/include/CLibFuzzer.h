#ifndef CLIBFUZZER_H
#define CLIBFUZZER_H
#include <stddef.h>
#include <stdint.h>

// libFuzzer's driver (compiler-rt, libclang_rt.fuzzer, linked by -sanitize=fuzzer). SwiftPM links every
// executable with its own main, so libFuzzer's main is never used: each target's main.swift calls this.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
