{
  # The addon is Linux-only (VFIO, iommufd, eventfd, memfd). Elsewhere the target builds nothing,
  # and lib/sys/addon.ts reports why native calls are unavailable.
  "targets": [
    {
      "target_name": "vfio",
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/addon.cc",
            "native/args.cc",
            "native/errors.cc",
            "native/files.cc",
            "native/memory.cc",
            "native/readiness.cc",
            "native/sockets.cc",
            "native/state.cc"
          ],
          "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
          "defines": [
            "NAPI_VERSION=9",
            "NAPI_DISABLE_CPP_EXCEPTIONS",
            "NODE_ADDON_API_DISABLE_DEPRECATED"
          ],
          "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y"],
          "cflags_cc": ["-std=c++17", "-fno-exceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
          "cflags": ["-fvisibility=hidden"]
        }, {
          "type": "none"
        }]
      ]
    }
  ]
}
