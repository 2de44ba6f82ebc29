// zlib, to read gzip-compressed traces (demos/traces/*.gz) as they stream.
#include <zlib.h>
