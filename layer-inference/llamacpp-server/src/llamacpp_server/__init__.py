"""llamacpp-server: llama.cpp's llama-server (C++, continuous batching, parallel slots) serving GGUF models; opt-in (--with llamacpp-server)"""
