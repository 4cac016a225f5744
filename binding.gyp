{
  "targets": [
    {
      "target_name": "mocopy_native",
      "sources": ["native/addon.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "conditions": [
        ["OS=='linux'", { "sources": ["native/sg_linux.cc", "native/sg_async_linux.cc"] }],
        ["OS=='win'", {
          "sources": ["native/spt_windows.cc", "native/list_windows.cc"],
          "libraries": ["setupapi.lib"],
          "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++17"] } }
        }]
      ]
    }
  ]
}
