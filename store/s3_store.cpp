#include "store/s3_store.hpp"
