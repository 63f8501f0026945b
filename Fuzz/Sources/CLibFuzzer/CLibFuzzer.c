// Only a declaration (include/CLibFuzzer.h): the definition is in libclang_rt.fuzzer.
