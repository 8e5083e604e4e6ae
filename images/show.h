// A readable summary of a whole image directory, straight from the images
// (it also works on directories that do not validate).
#pragma once

#include <string>

#include "images/image_dir.h"

namespace ro::images {

std::string ShowImageDir(const ImageDir& dir);

}  // namespace ro::images
