"""raynas.engine"""
