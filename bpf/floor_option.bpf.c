// SPDX-License-Identifier: GPL-2.0
/* The option floor of the kernel benchmarks: floor.bpf.c with the header-option callbacks on (see there). */
#define FLOOR_OPTION_CALLBACKS 1
#include "floor.bpf.c"
