#include "store/s3_upload.hpp"
