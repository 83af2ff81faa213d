"""llamacpp-server: llama.cpp's own llama-server as a backend of the mesh (build once, exec)."""
