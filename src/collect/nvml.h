/*
 * nvml.h - the few NVML types, constants and function signatures the GPU
 * collector uses, declared from NVML's documented C API so that holoscope
 * builds without NVIDIA's headers.  The library itself is loaded at run time
 * (gpu.c); tests load a fake with the same symbols (tests/collect/fake_nvml.c).
 * Private to the collect module and its tests.
 */
#ifndef HS_COLLECT_NVML_H
#define HS_COLLECT_NVML_H

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;

#define NVML_SUCCESS                 0
#define NVML_ERROR_UNINITIALIZED     1
#define NVML_ERROR_INVALID_ARGUMENT  2
#define NVML_ERROR_NOT_SUPPORTED     3
#define NVML_ERROR_NO_PERMISSION     4
#define NVML_ERROR_NOT_FOUND         6
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_TIMEOUT           10
#define NVML_ERROR_GPU_IS_LOST       15
#define NVML_ERROR_UNKNOWN           999

#define NVML_TEMPERATURE_GPU               0
#define NVML_CLOCK_GRAPHICS                0
#define NVML_CLOCK_SM                      1
#define NVML_CLOCK_MEM                     2
#define NVML_MEMORY_ERROR_TYPE_CORRECTED   0
#define NVML_MEMORY_ERROR_TYPE_UNCORRECTED 1
#define NVML_VOLATILE_ECC                  0
#define NVML_AGGREGATE_ECC                 1
#define NVML_PCIE_UTIL_TX_BYTES            0
#define NVML_PCIE_UTIL_RX_BYTES            1
#define NVML_EVENT_TYPE_XID_CRITICAL_ERROR 0x0000000000000008ULL

#define NVML_DEVICE_NAME_BUFFER_SIZE           96
#define NVML_DEVICE_UUID_BUFFER_SIZE           96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80

typedef struct {
    unsigned int gpu;    /* percent of time a kernel ran */
    unsigned int memory; /* percent of time memory was read or written */
} nvmlUtilization_t;

typedef struct {
    unsigned long long total; /* bytes */
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

/* nvmlPciInfo_t as nvmlDeviceGetPciInfo_v3 fills it. */
typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

/* nvmlProcessInfo_t of the _v2/_v3 process queries. */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory; /* bytes */
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

/* nvmlProcessInfo_v1_t of the unversioned process query. */
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

/* nvmlEventData_t (the v1 layout is a prefix of it). */
typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType;
    unsigned long long eventData; /* the XID for XID events */
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlEventData_t;

#endif
